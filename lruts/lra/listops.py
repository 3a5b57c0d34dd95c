"""ListOps (Nangia & Bowman 2018, as set up in LRA): nested lists of MAX, MIN, MED, SM (sum mod 10)
over digits; the label is the value of the expression, 10 classes.

The official release (`listops-1000/basic_{train,val,test}.tsv`, header `Source<TAB>Target`) writes
each expression as the LRA generator's nested pairs with parentheses, e.g. `[MAX 2 9 ]` as
`( ( ( [MAX 2 ) 9 ) ] )`. The model reads the tokens without the parentheses (≤ 2,000 tokens), as in
the S4/S5/LRU code.

`generate_listops` follows the LRA task definition: a node below `max_depth` (10) is an operator
with probability 0.25, with 2–`max_args` (10) arguments; operators MIN, MAX, MED, SM; kept when its
length (values + 2 per operator) is strictly between `min_length` (500) and `max_length` (2,000);
no duplicate expressions. Every label is computed on the tree and checked again by a stack
evaluation of the written tokens.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from lruts.errors import DataError

OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
END = "]"
# the official vocabulary also lists FIRST and LAST (unused by the LRA task); PAD is token 0
VOCAB = ("<pad>", *(str(d) for d in range(10)), "[MIN", "[MAX", "[MED", "[SM", "[FIRST", "[LAST", END)
TOKEN_ID = {t: i for i, t in enumerate(VOCAB)}
SPLITS = {"train": "basic_train.tsv", "val": "basic_val.tsv", "test": "basic_test.tsv"}
FOLDER = "listops-1000"
VALUE_P = 0.25  # probability that a node above max_depth is an operator (LRA: r > VALUE_P → value)


# ---------------------------------------------------------------------------------------- semantics
def apply(op: str, args: list[int]) -> int:
    """The value of operator `op` on digit arguments."""
    if op == "[MIN":
        return min(args)
    if op == "[MAX":
        return max(args)
    if op == "[MED":
        return int(np.median(args))  # the LRA generator's definition: median, truncated to int
    if op == "[SM":
        return sum(args) % 10
    if op == "[FIRST":
        return args[0]
    if op == "[LAST":
        return args[-1]
    raise DataError(f"unknown ListOps operator {op!r}")


def evaluate_tree(tree) -> int:
    if isinstance(tree, int):
        return tree
    op, children = tree
    return apply(op, [evaluate_tree(c) for c in children])


def evaluate_tokens(tokens: list[str]) -> int:
    """Value of an expression given as tokens (parentheses allowed and ignored), by a stack machine."""
    stack: list[tuple[str, list[int]]] = []
    result: int | None = None
    for tok in tokens:
        if tok in ("(", ")"):
            continue
        if tok.startswith("["):
            stack.append((tok, []))
        elif tok == END:
            if not stack:
                raise DataError("unbalanced ListOps expression: ']' without an operator")
            op, args = stack.pop()
            value = apply(op, args)
            if stack:
                stack[-1][1].append(value)
            else:
                result = value
        elif tok.isdigit() and len(tok) == 1:
            if stack:
                stack[-1][1].append(int(tok))
            else:
                result = int(tok)
        else:
            raise DataError(f"unexpected ListOps token {tok!r}")
    if stack or result is None:
        raise DataError("unbalanced ListOps expression: an operator is never closed")
    return result


# ---------------------------------------------------------------------------------------- generator
def _tree(rng: np.random.Generator, depth: int, max_depth: int, max_args: int):
    """(tree, length) with length = values + 2 per operator (its name and the closing bracket)."""
    r = rng.random() if depth < max_depth else 1.0
    if r > VALUE_P:
        return int(rng.integers(10)), 1
    n_args = int(rng.integers(2, max_args + 1))
    children, length = [], 2
    for _ in range(n_args):
        child, n = _tree(rng, depth + 1, max_depth, max_args)
        children.append(child)
        length += n
    return (OPERATORS[int(rng.integers(len(OPERATORS)))], children), length


def to_source(tree) -> str:
    """The official on-disk string: the LRA generator's nested pairs, each in parentheses."""
    if isinstance(tree, int):
        return str(tree)
    op, children = tree
    s = f"( {op} {to_source(children[0])} )"
    for child in children[1:]:
        s = f"( {s} {to_source(child)} )"
    return f"( {s} {END} )"


def generate_listops(
    n: int, *, seed: int, min_length: int = 500, max_length: int = 2000, max_depth: int = 10, max_args: int = 10
) -> list[tuple[str, int]]:
    """`n` distinct (source string, label) pairs, deterministic in `seed`."""
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    out: list[tuple[str, int]] = []
    while len(out) < n:
        tree, length = _tree(rng, 1, max_depth, max_args)
        if not min_length < length < max_length:
            continue
        source = to_source(tree)
        if source in seen:
            continue
        label = evaluate_tree(tree)
        check = evaluate_tokens(source.split())
        if label != check:  # two evaluations of one expression must agree; never write a wrong label
            raise AssertionError(f"ListOps label mismatch: tree {label}, tokens {check}")
        seen.add(source)
        out.append((source, label))
    return out


def write_listops(root: str | Path, splits: dict[str, list[tuple[str, int]]]) -> Path:
    """Write `root/listops-1000/basic_<split>.tsv` in the official format; returns the folder."""
    folder = Path(root) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        tmp = folder / (SPLITS[split] + ".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f, delimiter="\t")
            w.writerow(["Source", "Target"])
            w.writerows(rows)
        tmp.replace(folder / SPLITS[split])
    return folder


def generate_listops_release(
    root: str | Path, *, n_train: int, n_val: int, n_test: int, seed: int = 0, **limits
) -> Path:
    """Generate one distinct set and split it (train, val, test) like the LRA script; write it."""
    rows = generate_listops(n_train + n_val + n_test, seed=seed, **limits)
    return write_listops(
        root, {"train": rows[:n_train], "val": rows[n_train : n_train + n_val], "test": rows[n_train + n_val :]}
    )


# ---------------------------------------------------------------------------------------- reader
def tokenize(source: str) -> np.ndarray:
    """Token ids (int16) of an expression, parentheses dropped."""
    try:
        return np.array([TOKEN_ID[t] for t in source.split() if t not in ("(", ")")], dtype=np.int16)
    except KeyError as e:
        raise DataError(f"ListOps token {e.args[0]!r} is not in the vocabulary {VOCAB[1:]}") from None


def read_listops_split(path: str | Path, limit: int | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """One official TSV → (token arrays, labels (n,) int64)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"ListOps file {path} not found")
    tokens, labels = [], []
    with open(path, newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["Source", "Target"]:
            raise DataError(f"{path}: expected the header 'Source<TAB>Target', got {header}")
        for i, row in enumerate(reader, start=2):
            if limit is not None and len(labels) >= limit:
                break
            if len(row) < 2:
                raise DataError(f"{path}:{i}: expected 2 tab-separated columns, got {len(row)}")
            label = int(row[1])
            if not 0 <= label <= 9:
                raise DataError(f"{path}:{i}: label {label} is not a digit")
            tokens.append(tokenize(row[0]))
            labels.append(label)
    return tokens, np.array(labels, dtype=np.int64)
