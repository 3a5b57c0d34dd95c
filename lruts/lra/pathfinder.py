"""Pathfinder (Linsley et al. 2018; LRA's Pathfinder at 32×32 and Path-X at 128×128): an image with
curved dashed contours and two marker dots; label 1 when both dots lie on the same contour.

Official layout (LRA release), read by `read_pathfinder`:

    pathfinder32/curv_contour_length_14/metadata/<k>.npy     text, one line per image:
        imgs/<k> sample_<i>.png <i> <label> ...
    pathfinder32/curv_contour_length_14/imgs/<k>/sample_<i>.png   grayscale PNG
    pathfinder128/...                                          the same for Path-X

Lines whose image is missing or empty are skipped (the release has a few empty PNGs). There is no
official split: like the S4/S5 code we shuffle all images with seed 42 and split 80/10/10.

`generate_pathfinder` writes that layout from the task definition: two main contours of `n_dashes`
dashes (14: "curv_contour_length_14") whose heading turns by at most `max_turn` per dash, plus
distractor contours; markers at both ends of one contour (positive) or at one end of each of the
two (negative). Different contours stay `separation` pixels apart (Chebyshev), so closing the dash
gaps never joins two contours: that is what an independent check of the labels can rely on.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lruts.errors import DataError

log = logging.getLogger("lruts")

SUBSET = "curv_contour_length_14"


@dataclass(frozen=True)
class PathfinderStyle:
    size: int  # image side in pixels
    dash: float  # dash length, px
    gap: float  # gap between dashes, px
    width: int  # stroke width, px
    marker_radius: float
    separation: int  # min Chebyshev distance between pixels of different contours
    close_radius: int  # dilation radius (Chebyshev) that bridges every dash gap; < separation / 2
    margin: int  # keep strokes this far from the border
    n_dashes: int = 14
    n_distractors: int = 1
    max_turn: float = 0.5  # rad per dash

    @property
    def folder(self) -> str:
        return f"pathfinder{self.size}"


STYLES = {
    32: PathfinderStyle(
        size=32, dash=1.5, gap=1.2, width=1, marker_radius=1.5, separation=4, close_radius=1, margin=0, max_turn=0.8
    ),
    128: PathfinderStyle(
        size=128,
        dash=6.0,
        gap=4.8,
        width=2,
        marker_radius=3.0,
        separation=9,
        close_radius=3,
        margin=1,
        n_distractors=4,
        max_turn=0.6,
    ),
}


# ---------------------------------------------------------------------------------------- drawing
def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """Binary dilation by a (2r+1)² square (separable max filter)."""
    if r <= 0:
        return mask.copy()
    out = mask.copy()
    for axis in (0, 1):
        src = out.copy()
        for s in range(1, r + 1):
            out |= np.roll(src, s, axis) & _valid(src.shape, s, axis)
            out |= np.roll(src, -s, axis) & _valid(src.shape, -s, axis)
    return out


def _valid(shape: tuple[int, int], shift: int, axis: int) -> np.ndarray:
    """Mask that removes what np.roll wrapped around the border."""
    m = np.ones(shape, dtype=bool)
    idx = [slice(None), slice(None)]
    idx[axis] = slice(0, shift) if shift > 0 else slice(shift, None)
    m[tuple(idx)] = False
    return m


def _segment_pixels(p0: np.ndarray, p1: np.ndarray, width: int) -> np.ndarray:
    """Integer (row, col) pixels of a straight stroke from p0 to p1, `width` px wide: (n, 2)."""
    n = max(2, math.ceil(np.abs(p1 - p0).max() * 4) + 1)
    pts = np.rint(p0 + np.linspace(0, 1, n)[:, None] * (p1 - p0)).astype(np.int64)
    if width > 1:
        offsets = np.array([(i, j) for i in range(width) for j in range(width)])
        pts = (pts[:, None, :] + offsets[None]).reshape(-1, 2)
    return np.unique(pts, axis=0)


def _disc(centre: np.ndarray, radius: float) -> np.ndarray:
    r = math.ceil(radius)
    c = np.rint(centre).astype(np.int64)
    ii, jj = np.mgrid[-r : r + 1, -r : r + 1]
    keep = ii**2 + jj**2 <= radius**2 + 1e-9
    return np.stack([ii[keep] + c[0], jj[keep] + c[1]], axis=1)


def _contour(rng: np.random.Generator, st: PathfinderStyle, forbidden: np.ndarray, tries: int = 40, turns: int = 8):
    """(pixels (n, 2), start point, end point) of one dashed contour inside the image and off
    `forbidden`, or None.

    The contour grows dash by dash from a random point. Each dash turns the heading by a random
    angle of at most `max_turn`; of `turns` candidate turns, those whose dash fits (inside, off
    `forbidden`, not within reach of its own earlier dashes) are kept, and one whose look-ahead point
    (a turning radius further on) is still inside is preferred, which steers it along the walls.
    """
    lo, hi = st.margin + st.marker_radius, st.size - 1 - st.margin - st.marker_radius
    look = (st.dash + st.gap) / st.max_turn
    for _ in range(tries):
        pos = rng.uniform(lo, hi, size=2)
        if forbidden[tuple(np.rint(pos).astype(np.int64))]:
            continue
        start, heading = pos.copy(), rng.uniform(0, 2 * math.pi)
        own = np.full((st.size, st.size), -1, dtype=np.int64)  # dash index that drew each pixel
        dashes: list[np.ndarray] = []
        for d in range(st.n_dashes):
            hs = heading + (rng.uniform(-st.max_turn, st.max_turn, size=turns) if d else np.zeros(1))
            best, best_room = None, -np.inf
            for h in hs:
                step = np.array([math.sin(h), math.cos(h)])
                p0 = pos + (st.gap * step if d else 0.0)
                p1 = p0 + st.dash * step
                if not (lo <= p1[0] <= hi and lo <= p1[1] <= hi):
                    continue
                px = _segment_pixels(p0, p1, st.width)
                if forbidden[px[:, 0], px[:, 1]].any() or _near_older(own, px, d, st.width):
                    continue
                q = p1 + look * step
                room = min(q[0] - lo, hi - q[0], q[1] - lo, hi - q[1])
                if room >= 0 and forbidden[tuple(np.rint(q).astype(np.int64))]:
                    room = -0.5  # heading into another contour's zone: take it only if nothing better
                if room >= 0:
                    best = (h, p1, px)
                    break
                if room > best_room:
                    best, best_room = (h, p1, px), room
            if best is None:
                break
            heading, pos, px = best
            own[px[:, 0], px[:, 1]] = d
            dashes.append(px)
        else:
            ends = np.concatenate([_disc(start, st.marker_radius), _disc(pos, st.marker_radius)])
            apart = np.abs(start - pos).max() >= 2 * st.marker_radius + st.separation  # two dots, never one blob
            if apart and not forbidden[ends[:, 0], ends[:, 1]].any():  # the dots keep the separation too
                return np.concatenate(dashes), start, pos
    return None


def _near_older(own: np.ndarray, px: np.ndarray, d: int, reach: int) -> bool:
    """True when a pixel of dash d lies within `reach` px of a dash drawn before dash d−1."""
    if d < 2:
        return False
    n = own.shape[0]
    lo = np.clip(px.min(0) - reach, 0, n - 1)
    hi = np.clip(px.max(0) + reach, 0, n - 1)
    window = own[lo[0] : hi[0] + 1, lo[1] : hi[1] + 1]
    if not ((window >= 0) & (window < d - 1)).any():
        return False
    for di in range(-reach, reach + 1):
        for dj in range(-reach, reach + 1):
            i, j = np.clip(px[:, 0] + di, 0, n - 1), np.clip(px[:, 1] + dj, 0, n - 1)
            prev = own[i, j]
            if ((prev >= 0) & (prev < d - 1)).any():
                return True
    return False


def draw_pathfinder(rng: np.random.Generator, st: PathfinderStyle, label: int, attempts: int = 100) -> np.ndarray:
    """One (size, size) uint8 image with the given label (1: both markers on one contour)."""
    for _ in range(attempts):
        occupied = np.zeros((st.size, st.size), dtype=bool)
        contours = []
        for c in range(2 + st.n_distractors):
            found = _contour(rng, st, _dilate(occupied, st.separation - 1), tries=10 if c < 2 else 3)
            if found is None:
                if c < 2:
                    break  # the two main contours are required: start the image again
                continue  # a distractor that does not fit is left out
            pixels, start, end = found
            reserved = np.concatenate([pixels, _disc(start, st.marker_radius), _disc(end, st.marker_radius)])
            occupied[reserved[:, 0], reserved[:, 1]] = True
            contours.append(found)
        if len(contours) < 2:
            continue
        img = np.zeros((st.size, st.size), dtype=np.uint8)
        for pixels, _, _ in contours:
            img[pixels[:, 0], pixels[:, 1]] = 255
        (_, a0, a1), (_, b0, b1) = contours[0], contours[1]
        ends = (a0, a1) if label == 1 else ((a0, a1)[rng.integers(2)], (b0, b1)[rng.integers(2)])
        for e in ends:
            disc = _disc(e, st.marker_radius)
            img[disc[:, 0], disc[:, 1]] = 255
        return img
    raise RuntimeError(f"could not place 2 contours on a {st.size}² image; relax the style")


def generate_pathfinder(
    root: str | Path,
    n: int,
    *,
    size: int = 32,
    seed: int = 0,
    per_folder: int = 1000,
    style: PathfinderStyle | None = None,
    workers: int = 1,
) -> Path:
    """Write `n` images (balanced labels, shuffled) in the official layout under `root`; returns
    `root/pathfinder<size>/curv_contour_length_14`.

    Folder k (`per_folder` images) is drawn from its own generator seeded by (seed, k), so the files
    depend only on `seed` and `per_folder`, not on `workers` (processes drawing folders in parallel).
    """
    st = style or STYLES.get(size)
    if st is None:
        raise DataError(f"no Pathfinder style for size {size}; known: {sorted(STYLES)}")
    base = Path(root) / st.folder / SUBSET
    (base / "metadata").mkdir(parents=True, exist_ok=True)
    jobs = [(base, st, seed, k, k * per_folder, min(n, (k + 1) * per_folder)) for k in range(math.ceil(n / per_folder))]
    if workers > 1 and len(jobs) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(_write_folder, *zip(*jobs, strict=True)))
    else:
        for job in jobs:
            _write_folder(*job)
    return base


def _write_folder(base: Path, st: PathfinderStyle, seed: int, k: int, lo: int, hi: int) -> None:
    """Images lo…hi−1 into imgs/<k>/ and their lines into metadata/<k>.npy (written last, atomically)."""
    from PIL import Image

    rng = np.random.default_rng([seed, k])
    labels = rng.permutation(np.arange(hi - lo) % 2)
    folder = base / "imgs" / str(k)
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, label in zip(range(lo, hi), labels, strict=True):
        img = draw_pathfinder(rng, st, int(label))
        Image.fromarray(img, mode="L").save(folder / f"sample_{i}.png")
        lines.append(f"imgs/{k} sample_{i}.png {i} {int(label)} {st.n_dashes}\n")
    tmp = base / "metadata" / f"{k}.npy.tmp"
    tmp.write_text("".join(lines))
    tmp.replace(base / "metadata" / f"{k}.npy")


# ---------------------------------------------------------------------------------------- reader
def read_pathfinder(base: str | Path, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All images of `base` (…/pathfinder<size>/curv_contour_length_14) → (pixels (n, size²) uint8,
    labels (n,) int64), in metadata order."""
    from PIL import Image

    base = Path(base)
    meta_files = sorted((base / "metadata").glob("*.npy"), key=lambda p: int(p.stem) if p.stem.isdigit() else 0)
    if not meta_files:
        raise DataError(f"no metadata/*.npy under {base}: expected the LRA layout {base}/metadata/0.npy, …")
    pixels, labels, skipped, side = [], [], 0, None
    for mf in meta_files:
        for line_no, line in enumerate(mf.read_text().splitlines(), start=1):
            if limit is not None and len(labels) >= limit:
                break
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 4:
                raise DataError(f"{mf}:{line_no}: expected '<dir> <file> <index> <label> ...', got {line!r}")
            path = base / fields[0] / fields[1]
            if not path.is_file() or path.stat().st_size == 0:
                skipped += 1
                continue
            with Image.open(path) as im:
                arr = np.asarray(im.convert("L"), dtype=np.uint8)
            if side is None:
                side = arr.shape
            if arr.shape != side:
                raise DataError(f"{path}: image is {arr.shape}, the others are {side}")
            pixels.append(arr.reshape(-1))
            labels.append(int(fields[3]))
    if skipped:
        log.warning("pathfinder: skipped %d missing or empty images under %s", skipped, base)
    if not labels:
        raise DataError(f"no readable Pathfinder images under {base}")
    return np.stack(pixels), np.array(labels, dtype=np.int64)


def split_80_10_10(n: int, seed: int = 42) -> dict[str, np.ndarray]:
    """Index arrays of the usual random 80/10/10 split."""
    perm = np.random.default_rng(seed).permutation(n)
    a, b = int(0.8 * n), int(0.9 * n)
    return {"train": perm[:a], "val": perm[a:b], "test": perm[b:]}
