"""Well-known locations inside the project tree."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE_DIR = ROOT / "knowledge"
ENTITY_VOCABULARY = KNOWLEDGE_DIR / "entities.yml"
JIEBA_USER_DICT = KNOWLEDGE_DIR / "jieba_userdict.txt"
SYSTEM_MESSAGES = KNOWLEDGE_DIR / "system_messages.yml"
