"""The seeded generators: deterministic by seed, ListOps labels equal the evaluated expressions,
Pathfinder labels agree with a connectivity check that knows nothing of the generator."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from lruts.lra import listops, pathfinder


# ------------------------------------------------------------------------------------------- ListOps
def _parse(tokens: list[str], i: int = 0) -> tuple[int, int]:
    """Recursive-descent evaluation of paren-free ListOps tokens (independent of lruts.lra.listops)."""
    tok = tokens[i]
    if tok.isdigit():
        return int(tok), i + 1
    args, i = [], i + 1
    while tokens[i] != "]":
        v, i = _parse(tokens, i)
        args.append(v)
    ops = {
        "[MAX": max,
        "[MIN": min,
        "[MED": lambda a: (
            sorted(a)[(len(a) - 1) // 2]
            if len(a) % 2
            else int((sorted(a)[len(a) // 2 - 1] + sorted(a)[len(a) // 2]) / 2)
        ),
        "[SM": lambda a: sum(a) % 10,
    }
    return ops[tok](args), i + 1


@pytest.fixture(scope="module")
def listops_rows():
    return listops.generate_listops(40, seed=7)


def test_listops_labels_equal_the_evaluated_expressions(listops_rows):
    for source, label in listops_rows:
        tokens = [t for t in source.split() if t not in ("(", ")")]
        value, end = _parse(tokens)
        assert end == len(tokens)
        assert value == label


def test_listops_respects_the_task_definition(listops_rows):
    ops = set()
    for source, _ in listops_rows:
        tokens = [t for t in source.split() if t not in ("(", ")")]
        assert 500 < len(tokens) < 2000
        ops |= {t for t in tokens if t.startswith("[")}
        assert source.count("(") == source.count(")")
    assert ops == {"[MAX", "[MIN", "[MED", "[SM"}
    assert len({s for s, _ in listops_rows}) == len(listops_rows)  # no duplicates
    assert len({y for _, y in listops_rows}) > 3


def test_listops_is_deterministic_by_seed(listops_rows):
    assert listops.generate_listops(40, seed=7) == listops_rows
    assert listops.generate_listops(5, seed=8) != listops_rows[:5]


def test_listops_written_files_read_back(tmp_path):
    folder = listops.generate_listops_release(tmp_path, n_train=6, n_val=2, n_test=2, seed=3)
    rows = listops.generate_listops(10, seed=3)
    tokens, labels = listops.read_listops_split(folder / "basic_test.tsv")
    assert labels.tolist() == [y for _, y in rows[8:]]
    assert len(tokens[0]) == len([t for t in rows[8][0].split() if t not in ("(", ")")])


# ------------------------------------------------------------------------------------------- Pathfinder
def connected_markers(img: np.ndarray, marker: int, bridge: int) -> bool:
    """Are the two marker dots on one curve? Found from the picture alone: markers are the blobs that
    survive an erosion by a `marker`² square (strokes are thinner); dash gaps are closed by a
    dilation by a (2·bridge+1)² square; then 8-connected components."""
    fg = img > 127
    dots, n_dots = ndimage.label(ndimage.binary_erosion(fg, np.ones((marker, marker))))
    assert n_dots == 2, f"expected 2 marker dots, found {n_dots}"
    closed = ndimage.binary_dilation(fg, np.ones((2 * bridge + 1, 2 * bridge + 1)))
    comp, _ = ndimage.label(closed, structure=np.ones((3, 3)))
    ids = {int(comp[tuple(np.argwhere(dots == k)[0])]) for k in (1, 2)}
    return len(ids) == 1


@pytest.mark.parametrize(("size", "n", "marker", "bridge"), [(32, 40, 3, 1), (128, 6, 5, 3)])
def test_pathfinder_labels_agree_with_connectivity_after_closing_the_gaps(size, n, marker, bridge):
    rng = np.random.default_rng(11)
    st = pathfinder.STYLES[size]
    for i in range(n):
        label = i % 2
        img = pathfinder.draw_pathfinder(rng, st, label)
        assert img.shape == (size, size)
        assert connected_markers(img, marker, bridge) == bool(label), f"image {i}"


def test_pathfinder_gaps_are_real(tmp_path):
    """The contours are dashed: the strokes alone (without closing) break into many pieces."""
    img = pathfinder.draw_pathfinder(np.random.default_rng(0), pathfinder.STYLES[128], 1)
    _, pieces = ndimage.label(img > 127, structure=np.ones((3, 3)))
    assert pieces > 10


def test_pathfinder_files_are_deterministic_by_seed_whatever_the_workers_and_read_back(tmp_path):
    a = pathfinder.generate_pathfinder(tmp_path / "a", 12, size=32, seed=5, per_folder=4)
    b = pathfinder.generate_pathfinder(tmp_path / "b", 12, size=32, seed=5, per_folder=4, workers=2)
    c = pathfinder.generate_pathfinder(tmp_path / "c", 12, size=32, seed=6, per_folder=4)
    xa, ya = pathfinder.read_pathfinder(a)
    xb, yb = pathfinder.read_pathfinder(b)
    xc, _ = pathfinder.read_pathfinder(c)
    assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
    assert not np.array_equal(xa, xc)
    assert ya.sum() == 6  # balanced labels (three folders of 4, each balanced)
    assert sorted(p.name for p in (a / "metadata").iterdir()) == ["0.npy", "1.npy", "2.npy"]
    first = (a / "metadata" / "0.npy").read_text().splitlines()[0].split()
    assert first[:2] == ["imgs/0", "sample_0.png"] and (a / "imgs" / "0" / "sample_0.png").is_file()
