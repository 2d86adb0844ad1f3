"""Write cases.json: the hand-picked cases plus seeded random ones.

Run from this folder, then regenerate vectors.json with Go (see main.go):

    python make_cases.py && GOFLAGS=-mod=mod GOPROXY=off GOSUMDB=off go run . < cases.json > vectors.json
"""

from __future__ import annotations

import json
import pathlib
import random

_HERE = pathlib.Path(__file__).parent
_TRICKY = [*"abcXYZ019 :#-'\"\t\n.,_[]{}&*!|>%@`?\\/=+~", "é", "🙂", "\u2028", "\x85", "\u00a0", "\ufeff", "模"]
_NASTY = [" ", "\x85", " \x85 ", "\x85\x85", "\x85---", "\x85--- x", "\ufeff", "\x7f", "\x80", "'", '"']
_NUMBERISH = [
    "1",
    "-1",
    "+1",
    "0.5",
    ".5",
    "1e3",
    "0x1F",
    "0o7",
    "07",
    "08",
    "1_0",
    "1:30",
    "2024-02-30",
    "2024-02-29",
    "true",
]


def _text(rng: random.Random, longest: int) -> str:
    if rng.random() < 0.15:
        return rng.choice(_NUMBERISH)
    if rng.random() < 0.2:
        return "".join(rng.choice(_NASTY + _TRICKY[:12]) for _ in range(rng.randrange(0, 12)))
    if rng.random() < 0.3:
        return " ".join(
            rng.choice(["--model", "x", "--max-model-len", "4096", "a:b", "#c", "--flag=1"])
            for _ in range(rng.randrange(1, 30))
        )
    return "".join(rng.choice(_TRICKY) for _ in range(rng.randrange(0, longest)))


def _key(rng: random.Random) -> str:
    return "".join(rng.choice("AB_az019") for _ in range(rng.randrange(1, 8)))


def main() -> None:
    cases = [case for case in json.loads((_HERE / "cases.json").read_text()) if not case["name"].startswith("random-")]
    rng = random.Random(20261127)
    for index in range(400):
        config: dict[str, object] = {"port": rng.randrange(1, 65536)}
        if rng.random() < 0.8:
            config["options"] = _text(rng, 160)
        if rng.random() < 0.7:
            config["env_vars"] = {_key(rng): _text(rng, 40) for _ in range(rng.randrange(1, 6))}
        if rng.random() < 0.2:
            config["labels"] = {_text(rng, 8) or "k": _text(rng, 100) for _ in range(rng.randrange(1, 3))}
        gpus = [f"GPU-{rng.randrange(8)}" for _ in range(rng.randrange(0, 4))]
        cases.append({"name": f"random-{index}", "config": config, "gpus": gpus})
    words = ["a", "bb", "--flag", "x: y", "it's", '"q"', "#c", "\\", "é", " ", "  ", "\t", "1", "true", "模"]
    for index in range(150):

        def long_text() -> str:
            return " ".join(rng.choice(words) for _ in range(rng.randrange(10, 60)))

        config = {"port": rng.randrange(1, 65536), "options": long_text()}
        config["env_vars"] = {_key(rng): long_text() for _ in range(rng.randrange(1, 4))}
        if rng.random() < 0.3:
            config["env_vars"]["K" * rng.randrange(120, 140) + _key(rng)] = long_text()
        cases.append({"name": f"random-fold-{index}", "config": config, "gpus": ["GPU-0"]})
    (_HERE / "cases.json").write_text(json.dumps(cases, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
