"""Attack tests (issue 13, log-masking-gaps): personal data written to the logs in any of its
shapes, in a message or in an exception, must come out masked through the logging that the
running processes install (`install_log_masking`, as bot.channels, actions and the console do),
both through a plain handler and through structlog's JSON rendering as Rasa 3.6 uses it.
"""

from __future__ import annotations

import io
import logging
from typing import Iterator, List, Tuple

import pytest
import structlog

from bot.privacy import install_log_masking

# (what the shopper's data looks like in the log, a fragment that must never be logged)
SHAPES: List[Tuple[str, str]] = [
    ("13987654321", "87654"),
    ("+8613987654321", "87654"),
    ("+86 139 8765 4321", "8765"),
    ("0086-139-8765-4321", "8765"),
    ("139-8765-4321", "8765"),
    ("139 8765 4321", "8765"),
    ("１３９８７６５４３２１", "８７６５"),
    ("１３９－８７６５－４３２１", "８７６５"),
    ("0571-87654321", "8765"),
    ("110101199003074518", "19900307"),
    ("11010119900307451X", "19900307"),
    ("110101 19900307 4518", "19900307"),
    ("１１０１０１１９９００３０７４５１８", "１９９００３０７"),
    ("110101900307451", "900307"),
    ("zhang.san@example.com", "zhang.san"),
    ("ｚｈａｎｇｓａｎ＠ｑｑ．ｃｏｍ", "ｚｈａｎｇｓａｎ"),
]
IDS = [shape for shape, _ in SHAPES]


def json_escaped(text: str) -> str:
    return "".join(c if ord(c) < 0x80 else f"\\u{ord(c):04x}" for c in text)


@pytest.fixture
def log_output() -> Iterator[Tuple[logging.Logger, io.StringIO]]:
    install_log_masking()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger("rasa.core.processor.attack")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def assert_masked(output: str, shape: str, fragment: str) -> None:
    assert shape not in output
    assert fragment not in output
    assert json_escaped(fragment) not in output


@pytest.mark.attack("log-masking-gaps")
@pytest.mark.parametrize("shape, fragment", SHAPES, ids=IDS)
def test_a_logged_message_is_masked(log_output, shape, fragment):
    logger, stream = log_output
    logger.info("user said %s", f"我的信息是{shape}，订单2026112012345678")
    logger.warning(f"slot phone={shape}")
    output = stream.getvalue()
    assert_masked(output, shape, fragment)
    assert output.count("2026112012345678") == 1  # the order number stays readable


@pytest.mark.attack("log-masking-gaps")
@pytest.mark.parametrize("shape, fragment", SHAPES, ids=IDS)
def test_a_logged_exception_is_masked(log_output, shape, fragment):
    logger, stream = log_output
    try:
        try:
            raise KeyError(f"customer {shape}")
        except KeyError as cause:
            raise RuntimeError(f"lookup failed for {shape}") from cause
    except RuntimeError:
        logger.exception("action failed")
    logger.error("with stack", stack_info=True, extra={})
    output = stream.getvalue()
    assert "Traceback" in output and "RuntimeError" in output  # the traceback is still logged
    assert_masked(output, shape, fragment)


def log_a_failure(log, shape: str) -> None:
    # Caught here, so the traceback (rendered with each frame's locals) has this frame only.
    customer_phone = shape
    try:
        raise ValueError(f"bad {customer_phone}")
    except ValueError:
        log.exception("action.failed")


@pytest.mark.attack("log-masking-gaps")
@pytest.mark.parametrize("shape, fragment", SHAPES, ids=IDS)
def test_rasa_structlog_json_lines_are_masked(log_output, shape, fragment):
    """Rasa 3.6 in a container renders structlog events as JSON (ASCII-escaped, with dict
    tracebacks) and hands the line to a stdlib logger."""
    logger, stream = log_output
    log = structlog.wrap_logger(
        logger,
        processors=[structlog.processors.add_log_level, structlog.processors.StackInfoRenderer(),
                    structlog.dev.set_exc_info, structlog.processors.dict_tracebacks,
                    structlog.processors.JSONRenderer()],
        wrapper_class=structlog.stdlib.BoundLogger,
    )
    log.debug("processor.message.parse", parse_data_text=f"我的手机是{shape}")
    log_a_failure(log, shape)
    output = stream.getvalue()
    assert "processor.message.parse" in output and "action.failed" in output
    assert_masked(output, shape, fragment)
