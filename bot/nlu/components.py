"""Custom Rasa NLU components: project tokenizer, spaCy entity ruler, unreadable-message guard.

The language logic lives in bot.nlu.vocabulary and bot.nlu.text; these classes only adapt it
to Rasa's graph component interfaces.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.nlu.tokenizers.tokenizer import Token, Tokenizer
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_CONFIDENCE,
    ENTITY_ATTRIBUTE_END,
    ENTITY_ATTRIBUTE_START,
    ENTITY_ATTRIBUTE_TYPE,
    ENTITY_ATTRIBUTE_VALUE,
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.handoff.triggers import URGENT, escalation_for
from bot.nlu.routing import KbEvidence, reroute
from bot.nlu.text import is_unreadable, nlu_windows
from bot.nlu.vocabulary import default_matcher, ensure_jieba, segment

UNREADABLE_INTENT = "unreadable"
COMPLAINT_INTENT = "complain"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class ProjectJiebaTokenizer(Tokenizer):
    """jieba with the project dictionary; very long messages are read at both ends only."""

    @staticmethod
    def supported_languages() -> Optional[List[Text]]:
        return ["zh"]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            "intent_tokenization_flag": False,
            "intent_split_symbol": "_",
            "token_pattern": None,
            "prefix_separator_symbol": None,
        }

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "ProjectJiebaTokenizer":
        ensure_jieba()
        return cls(config)

    def tokenize(self, message: Message, attribute: Text) -> List[Token]:
        text = message.get(attribute) or ""
        tokens = [
            Token(word, offset + start)
            for offset, fragment in nlu_windows(text)
            for word, start, _end in segment(fragment)
            if word.strip()
        ]
        return self._apply_token_pattern(tokens)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class SpacyEntityRuler(GraphComponent, EntityExtractorMixin):
    """Domain entities from spaCy's EntityRuler, valued with their canonical synonym."""

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "SpacyEntityRuler":
        default_matcher()  # build once at load time, not on the first message
        return cls()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            # Like the tokenizer, read both ends only: spaCy takes seconds over 100,000 characters.
            found = [
                {
                    ENTITY_ATTRIBUTE_TYPE: match.entity,
                    ENTITY_ATTRIBUTE_VALUE: match.value,
                    ENTITY_ATTRIBUTE_START: offset + match.start,
                    ENTITY_ATTRIBUTE_END: offset + match.end,
                    ENTITY_ATTRIBUTE_CONFIDENCE: 1.0,
                }
                for offset, fragment in nlu_windows(message.get(TEXT) or "")
                for match in default_matcher().match(fragment)
            ]
            found = self.add_extractor_name(found)
            message.set(ENTITIES, message.get(ENTITIES, []) + found, add_to_output=True)
        return messages


class _IntentGuard(GraphComponent):
    """Overrides the classifier's intent for messages where the right route is not a guess."""

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "_IntentGuard":
        return cls()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def override(self, message: Message) -> Optional[str]:
        raise NotImplementedError

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            intent_name = self.override(message)
            if intent_name:
                intent = {INTENT_NAME_KEY: intent_name, PREDICTED_CONFIDENCE_KEY: 1.0}
                message.set(INTENT, intent, add_to_output=True)
                message.set(INTENT_RANKING_KEY, [intent], add_to_output=True)
        return messages


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class KnowledgeRouter(_IntentGuard):
    """Knowledge-base retrieval as evidence next to DIET (bot.nlu.routing): a message that asks
    something the knowledge base explains well is a question for it, even when DIET hesitates
    or settles on a greeting, a bare answer or a fallback. BM25 only: a millisecond a message."""

    @classmethod
    def create(cls, config, model_storage, resource, execution_context) -> "KnowledgeRouter":
        from bot.knowledge.retrieval import default_index

        default_index()  # build once at load time, not on the first message
        return cls()

    def override(self, message: Message) -> Optional[str]:
        from bot.knowledge.retrieval import default_index

        text = message.get(TEXT) or ""
        if not text.strip() or text.startswith("/"):
            return None
        intent = (message.get(INTENT) or {}).get(INTENT_NAME_KEY)
        ranking = [(r.get(INTENT_NAME_KEY), r.get(PREDICTED_CONFIDENCE_KEY) or 0.0) for r in message.get(INTENT_RANKING_KEY) or []]
        hits = default_index().search(text[-NLU_ROUTE_CHARS:], k=1, dense=False)
        kb = KbEvidence(hits[0].entry.kind, hits[0].lexical) if hits else None
        return reroute(intent, ranking, text, kb)


# The router reads at most the last this-many characters (a long story asks at its end).
NLU_ROUTE_CHARS = 1000


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class UnreadableMessageGuard(_IntentGuard):
    """Routes empty, emoji-only and punctuation-only messages to the `unreadable` intent.

    A classifier always guesses something; for a message with no words the honest answer is
    a gentle "what can I help with", whatever the guess was.
    """

    def override(self, message: Message) -> Optional[str]:
        return UNREADABLE_INTENT if is_unreadable(message.get(TEXT)) else None


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class SafetyIncidentGuard(_IntentGuard):
    """A safety incident (injury, fire, shock, poisoning, a swallowed part) is always a complaint
    for a person, whatever else the message seems to ask: it must never end in a FAQ answer."""

    def override(self, message: Message) -> Optional[str]:
        intent = (message.get(INTENT) or {}).get(INTENT_NAME_KEY)
        found = escalation_for(message.get(TEXT) or "", intent)
        if found is not None and found.priority == URGENT and intent != "request_human":
            return COMPLAINT_INTENT
        return None
