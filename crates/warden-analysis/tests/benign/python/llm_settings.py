# An agent script's generation settings, read from the environment: token counts, not tokens.
import os

MAX_TOKENS = int(os.getenv("MAX_TOKENS", "1024"))
MAX_NEW_TOKENS = int(os.environ.get("MAX_NEW_TOKENS", "256"))
CONTEXT_TOKENS = int(os.getenv("CONTEXT_TOKENS", "8192"))
TOKENS_PER_MINUTE = int(os.getenv("TOKENS_PER_MINUTE", "90000"))
MIN_LENGTH = int(os.getenv("PASSWORD_MIN_LENGTH", "12"))


def budget(prompt_tokens):
    room = CONTEXT_TOKENS - prompt_tokens
    return max(0, min(MAX_TOKENS, MAX_NEW_TOKENS, room))


for used in (100, 7000, 8192):
    print(used, budget(used), TOKENS_PER_MINUTE // max(1, budget(used) or 1), MIN_LENGTH)
