"""The agents of the review workflow (`examples/workflows/review.yaml`): a drafter that tidies a
text, and reviewers that each judge one aspect of it.

Their templates name them as `editorial:Drafter` and `editorial:Reviewer`; agent hosts find
them when `CORTEX_AGENT_PATH` includes this folder. See docs/workflows.md.
"""

from __future__ import annotations

import re
from typing import Any

from cortex.sdk import Agent, Message

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
HEDGES = {"maybe", "perhaps", "somewhat", "probably", "possibly", "hopefully", "just"}


def sentences(text: str) -> list[str]:
    return [s for s in SENTENCE_END.split(text.strip()) if s]


class Drafter(Agent):
    """Takes `{"text": ...}` and replies with the draft: whitespace tidied, each sentence
    starting with a capital and the last one ending with a full stop, and its counts."""

    async def on_message(self, msg: Message) -> dict[str, Any]:
        text = " ".join(str(msg.json()["text"]).split())
        parts = [s[:1].upper() + s[1:] for s in sentences(text)]
        if parts and parts[-1][-1] not in ".!?":
            parts[-1] += "."
        draft = " ".join(parts)
        return {"text": draft, "words": len(draft.split()), "sentences": len(parts)}


def clarity(text: str, words: list[str]) -> tuple[int, str]:
    average = len(words) / max(1, len(sentences(text)))
    score = 9 if average <= 15 else 7 if average <= 20 else 5 if average <= 30 else 3
    return score, f"sentences average {average:.0f} words"


def brevity(text: str, words: list[str]) -> tuple[int, str]:
    count = len(words)
    score = 9 if count <= 50 else 7 if count <= 100 else 5 if count <= 200 else 3
    return score, f"{count} words"


def tone(text: str, words: list[str]) -> tuple[int, str]:
    bare = [w.strip(".,;:!?\"'()") for w in words]
    shouting = text.count("!") + sum(1 for w in bare if len(w) > 2 and w.isupper())
    hedging = sum(1 for w in bare if w.lower() in HEDGES)
    if not shouting and not hedging:
        return 9, "calm and direct"
    return 9 - 2 * shouting - hedging, f"{shouting} shouted, {hedging} hedged"


ASPECTS = {"clarity": clarity, "brevity": brevity, "tone": tone}


class Reviewer(Agent):
    """Scores a draft (`{"text": ...}`) from 1 to 10 on the one aspect its config names:
    `clarity` (short sentences), `brevity` (few words) or `tone` (no shouting, no hedging).
    Three agents of this one template, with different configs, review the same draft."""

    async def on_start(self) -> None:
        self.aspect = str(self.config["aspect"])
        self.judge = ASPECTS[self.aspect]

    async def on_message(self, msg: Message) -> dict[str, Any]:
        text = str(msg.json()["text"])
        score, comment = self.judge(text, text.split())
        return {"aspect": self.aspect, "score": max(1, min(10, score)), "comment": comment}
