"""The REMI grammar of monophonic melodies as one concept: the state (`state`), the state machine and its
legal-token search (`remi`), the state-id tables of the lean decoder (`tables`) and the logits processor
(`logits_process`).
"""

from .logits_process import (
    REMIGrammarProcessor,
    grammar_scores,
    mask_early_eos,
)
from .remi import (
    REMIGrammar,
)
from .state import (
    FINISH_HORIZON,
    FIRST_KINDS,
    KINDS,
    GrammarRules,
    LengthLimits,
    MelodyState,
    TrackedNote,
)
from .tables import (
    GrammarTables,
)

__all__ = [
    "FINISH_HORIZON",
    "FIRST_KINDS",
    "GrammarRules",
    "GrammarTables",
    "KINDS",
    "LengthLimits",
    "MelodyState",
    "REMIGrammar",
    "REMIGrammarProcessor",
    "TrackedNote",
    "grammar_scores",
    "mask_early_eos",
]
