"""MNIST files, loading and the partitions."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from dbalib.core import data
from dbalib.core.errors import DataError


def test_mnist_files_match_published_md5():
    root = data.prepare_mnist()
    assert data.verify_mnist(root) == {}


def test_loaded_tensors(mnist):
    assert mnist.train_x.shape == (60000, 1, 28, 28) and mnist.test_x.shape == (10000, 1, 28, 28)
    assert float(mnist.train_x.min()) == 0.0 and float(mnist.train_x.max()) == 1.0
    assert sorted(np.unique(mnist.train_y.numpy()).tolist()) == list(range(10))
    assert int((mnist.test_y == 2).sum()) == 1032  # so the ASR test set holds 8,968 images


def test_corrupt_file_gives_clear_error(tmp_path):
    src = data.raw_dir(data.prepare_mnist())
    dst = tmp_path / "MNIST" / "raw"
    shutil.copytree(src, dst)
    path = dst / "t10k-labels-idx1-ubyte"
    payload = bytearray(path.read_bytes())
    payload[100] ^= 0xFF
    path.write_bytes(bytes(payload))
    with pytest.raises(DataError, match="corrupt MNIST.*make data"):
        data.prepare_mnist(tmp_path)


def test_unusable_folder_gives_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DataError, match="not writable"):
        data.prepare_mnist(blocker)


def test_idx_encoding_round_trip():
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    encoded = data._idx_bytes(array)
    assert encoded[:4] == bytes([0, 0, 8, 3])
    assert [int.from_bytes(encoded[4 + 4 * i: 8 + 4 * i], "big") for i in range(3)] == [2, 3, 4]
    assert np.frombuffer(encoded[16:], dtype=np.uint8).reshape(2, 3, 4).tolist() == array.tolist()


def test_dirichlet_partition_reproduces_reference_split(mnist):
    shards = data.dirichlet_partition(mnist.train_y.numpy(), 100, 0.5, seed=1)
    assert [len(shards[i]) for i in (41, 73, 51, 74, 95)] == [606, 591, 568, 557, 602]
    everything = np.concatenate(shards)
    assert len(everything) == len(np.unique(everything))  # disjoint
    assert len(everything) <= 60000


def test_dirichlet_partition_is_seeded(mnist):
    labels = mnist.train_y.numpy()
    a = data.dirichlet_partition(labels, 20, 0.5, seed=3)
    b = data.dirichlet_partition(labels, 20, 0.5, seed=3)
    c = data.dirichlet_partition(labels, 20, 0.5, seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_small_alpha_is_more_skewed(mnist):
    labels = mnist.train_y.numpy()

    def mean_classes(alpha):
        shards = data.dirichlet_partition(labels, 100, alpha, seed=1)
        return np.mean([len(np.unique(labels[s])) for s in shards if len(s)])

    assert mean_classes(0.05) < mean_classes(0.5) < mean_classes(100.0)


def test_iid_partition_sizes():
    shards = data.iid_partition(60000, 100, seed=0)
    assert {len(s) for s in shards} == {600}
    assert len(np.unique(np.concatenate(shards))) == 60000
