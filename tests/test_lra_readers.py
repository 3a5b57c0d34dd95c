"""Each LRA reader on tiny fixtures written in the official formats."""

from __future__ import annotations

import os
import pickle
import re
import zipfile

import numpy as np
import pytest
from lra_fixtures import LISTOPS_ROWS, write_aan, write_cifar_batches, write_imdb_jsonl, write_listops
from PIL import Image

from lruts.errors import DataError
from lruts.lra import image, listops, pathfinder, retrieval, text


def test_listops_reader_drops_parentheses_and_keeps_labels(tmp_path):
    folder = write_listops(tmp_path)
    tokens, labels = listops.read_listops_split(folder / "basic_train.tsv")
    assert labels.tolist() == [y for _, y in LISTOPS_ROWS]
    assert [listops.VOCAB[i] for i in tokens[0]] == ["[MAX", "2", "9", "]"]
    assert all(listops.VOCAB[i] not in ("(", ")") for t in tokens for i in t)


def test_listops_reader_rejects_a_file_without_the_header(tmp_path):
    p = tmp_path / "basic_train.tsv"
    p.write_text("[MAX 1 2 ]\t2\n")
    with pytest.raises(DataError, match="Source<TAB>Target"):
        listops.read_listops_split(p)


def test_aan_reader_reads_label_and_both_texts_as_bytes(tmp_path):
    folder = write_aan(tmp_path, n=6)
    a, b, y = retrieval.read_aan_split(folder / "new_aan_pairs.eval.tsv")
    assert y.tolist() == [0, 1, 0, 1, 0, 1]
    first_line = (folder / "new_aan_pairs.eval.tsv").read_text().splitlines()[0].split("\t")
    assert bytes((a[0] - 1).astype(np.uint8).tolist()).decode() == first_line[3]
    assert bytes((b[0] - 1).astype(np.uint8).tolist()).decode() == first_line[4]


def test_aan_reader_names_the_bad_line(tmp_path):
    p = tmp_path / "new_aan_pairs.train.tsv"
    p.write_text("1\tonly\tthree\n")
    with pytest.raises(DataError, match=r":1: expected 5 tab-separated fields"):
        retrieval.read_aan_split(p)


def test_imdb_jsonl_reader_merges_val_into_train_and_truncates_bytes(tmp_path):
    path = write_imdb_jsonl(tmp_path, n_per_split=10)
    data = text.read_imdb_jsonl(path, max_len=16)
    assert len(data["train"][1]) == 20 and len(data["test"][1]) == 10  # train + val = official train
    assert max(len(t) for t in data["train"][0]) == 16
    assert data["train"][0][0].min() >= 1  # 0 is padding


def test_aclimdb_tree_reader(tmp_path):
    for split in ("train", "test"):
        for sub, words in (("pos", "great film"), ("neg", "dull film")):
            d = tmp_path / "aclImdb" / split / sub
            d.mkdir(parents=True)
            (d / "0_9.txt").write_text(words)
    data = text.read_aclimdb(tmp_path / "aclImdb")
    toks, y = data["test"]
    assert y.tolist() == [0, 1]
    assert bytes((toks[1] - 1).astype(np.uint8).tolist()) == b"great film"


def test_cifar_batches_reader_orders_pixels_rgb(tmp_path):
    folder = write_cifar_batches(tmp_path, n_per_batch=4)
    with open(folder / "test_batch", "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    data = image.read_cifar_batches(folder)
    x, y = data["test"]
    assert x.shape == (4, 1024, 3) and len(data["train"][1]) == 20
    assert y.tolist() == raw[b"labels"]
    # pixel 5 of image 2: red at byte 5, green at 1024 + 5, blue at 2048 + 5
    assert x[2, 5].tolist() == [raw[b"data"][2, 5], raw[b"data"][2, 1029], raw[b"data"][2, 2053]]


def _batch(labels) -> dict:
    data = np.random.default_rng(0).integers(0, 256, size=(len(labels), 3072), dtype=np.uint8)
    return {b"data": data, b"labels": labels, b"batch_label": b"testing batch 1 of 1"}


def test_cifar_batch_reader_reads_numpy_1_and_protocol_5_pickles(tmp_path):
    batch = _batch([3, 1])
    # numpy 1 (the release's writer) named the constructor numpy.core.multiarray; numpy 2 writes numpy._core
    numpy1 = pickle.dumps(batch, protocol=3).replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    assert b"cnumpy.core.multiarray\n_reconstruct" in numpy1
    for name, raw in (("numpy1", numpy1), ("protocol5", pickle.dumps(batch, protocol=5))):
        (tmp_path / name).write_bytes(raw)
        x, y = image.read_cifar_batch(tmp_path / name)
        assert np.array_equal(x, batch[b"data"]) and y.tolist() == [3, 1]


class _Call:
    """Unpickles as `fn(*args)`: the shape of every pickle exploit."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


@pytest.mark.parametrize(
    "payload, refused",
    [
        (lambda marker: _Call(os.system, f"touch {marker}"), f"{os.system.__module__}.system"),
        (lambda marker: _Call(eval, f"open({str(marker)!r}, 'w')"), "builtins.eval"),
        (lambda marker: _Call(exec, f"open({str(marker)!r}, 'w')"), "builtins.exec"),
    ],
    ids=["os.system", "eval", "exec"],
)
def test_cifar_batch_with_any_other_global_is_refused_without_running_it(tmp_path, payload, refused):
    folder = write_cifar_batches(tmp_path, n_per_batch=2)
    marker = tmp_path / "payload_ran"
    batch = _batch([0, 1])
    batch[b"labels"] = [0, payload(marker)]  # hidden below the top level, where the format has plain ints
    (folder / "data_batch_3").write_bytes(pickle.dumps(batch))
    with pytest.raises(DataError, match=rf"data_batch_3 refers to {re.escape(refused)}; .*only dicts, lists"):
        image.read_cifar_batches(folder)
    assert not marker.exists()


def test_cifar_batch_reader_names_a_file_that_is_no_batch(tmp_path):
    (tmp_path / "not_a_pickle").write_bytes(b"PNG\x00garbage")
    (tmp_path / "a_list").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(DataError, match="not_a_pickle is not a CIFAR-10 python batch"):
        image.read_cifar_batch(tmp_path / "not_a_pickle")
    with pytest.raises(DataError, match="a_list is not a CIFAR-10 python batch: expected a dict"):
        image.read_cifar_batch(tmp_path / "a_list")


def _write_tree(root, rng):
    pixels = {}
    for split in ("train", "test"):
        for cls in ("cat", "airplane"):
            d = root / split / cls
            d.mkdir(parents=True)
            arr = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
            Image.fromarray(arr).save(d / "0001.png")
            pixels[(split, cls)] = arr
    return pixels


def test_image_folder_tree_and_zip_readers_give_the_same_pixels(tmp_path):
    rng = np.random.default_rng(0)
    pixels = _write_tree(tmp_path / "cifar10", rng)
    with zipfile.ZipFile(tmp_path / "cifar10.zip", "w") as z:
        for p in (tmp_path / "cifar10").rglob("*.png"):
            z.write(p, p.relative_to(tmp_path / "cifar10"))
    for src in (tmp_path / "cifar10", tmp_path / "cifar10.zip"):
        x, y = image.read_image_tree(src)["train"]
        assert y.tolist() == [image.CLASSES.index("airplane"), image.CLASSES.index("cat")]  # name order, CIFAR ids
        assert np.array_equal(x[0], pixels[("train", "airplane")].reshape(1024, 3))  # PNG: lossless


def test_grayscale_uses_luma_weights():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], dtype=np.uint8)
    assert image.to_grayscale(rgb)[..., 0].tolist() == [[76, 150, 29]]


def test_pathfinder_reader_official_layout_skips_empty_images(tmp_path):
    base = tmp_path / "pathfinder32" / pathfinder.SUBSET
    (base / "imgs" / "0").mkdir(parents=True)
    (base / "metadata").mkdir()
    lines = []
    for i in range(3):
        Image.fromarray(np.full((32, 32), 40 * i, dtype=np.uint8)).save(base / "imgs" / "0" / f"sample_{i}.png")
        lines.append(f"imgs/0 sample_{i}.png {i} {i % 2} 14 1.5 1\n")
    (base / "imgs" / "0" / "sample_3.png").write_bytes(b"")  # the release has a few empty files
    lines.append("imgs/0 sample_3.png 3 1 14 1.5 1\n")
    (base / "metadata" / "0.npy").write_text("".join(lines))
    x, y = pathfinder.read_pathfinder(base)
    assert x.shape == (3, 1024) and y.tolist() == [0, 1, 0]
    assert x[2, 0] == 80


def test_pathfinder_reader_without_metadata_says_what_it_expects(tmp_path):
    with pytest.raises(DataError, match="metadata"):
        pathfinder.read_pathfinder(tmp_path)
