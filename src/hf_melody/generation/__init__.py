"""Generation: the configuration (`MelodyGenerationConfig`), option checks, logits processors, stopping criteria,
streamers, prompts, the lean decoder (`decoding`) and infilling at generation time, laid out like
`transformers.generation`.
"""

from .checks import (
    check_int,
    check_key,
    check_pitch_range,
)
from .configuration import (
    DECODERS,
    DEFAULT_MAX_BARS,
    DEFAULT_MIN_BARS,
    GENERATE_ONLY,
    OUTPUT_TYPES,
    SHOWN_SETTINGS,
    MelodyGenerationConfig,
    check_generation_options,
    fresh_seed,
    options_doc,
)
from .decoding import (
    DEFAULT_TOKEN_CAP,
    MelodyDecoder,
    SampleResult,
    generate_ids,
)
from .infill import (
    check_bars,
    clip_to_bars,
    infill_ids,
    parse_bars,
)
from .logits_process import (
    DecodingPlan,
    MelodyConstraints,
    PitchConstraintProcessor,
    SeededSampler,
    decoding_plan,
    melody_constraints,
    melody_logits_processors,
)
from .prompts import (
    check_start,
    is_token_ids,
    prompt_ids,
    start_inputs,
)
from .stopping_criteria import (
    MinLengthProcessor,
    MusicalLengthCriteria,
    token_counts,
)
from .streamers import (
    MelodyTracker,
    NoteStreamer,
    StreamedNote,
)

__all__ = [
    "DECODERS",
    "DEFAULT_MAX_BARS",
    "DEFAULT_MIN_BARS",
    "DEFAULT_TOKEN_CAP",
    "GENERATE_ONLY",
    "DecodingPlan",
    "MelodyConstraints",
    "MelodyDecoder",
    "MelodyGenerationConfig",
    "MelodyTracker",
    "MinLengthProcessor",
    "MusicalLengthCriteria",
    "NoteStreamer",
    "OUTPUT_TYPES",
    "PitchConstraintProcessor",
    "SHOWN_SETTINGS",
    "SampleResult",
    "SeededSampler",
    "StreamedNote",
    "check_bars",
    "check_generation_options",
    "check_int",
    "check_key",
    "check_pitch_range",
    "check_start",
    "clip_to_bars",
    "decoding_plan",
    "fresh_seed",
    "generate_ids",
    "infill_ids",
    "is_token_ids",
    "melody_constraints",
    "melody_logits_processors",
    "options_doc",
    "parse_bars",
    "prompt_ids",
    "start_inputs",
    "token_counts",
]
