"""Datasets read from local files: image folders, CIFAR python batches, .npz / .safetensors,
their preparation per batch, the decoded-split cache, and one clear error for each bad input."""

from __future__ import annotations

import gc
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from ridgeline.core.errors import ConfigError, DataError
from ridgeline.core.interfaces import evaluator as evaluator_module
from ridgeline.core.interfaces.evaluator import Evaluator
from ridgeline.plugins.datasets.cifar import read_batch, write_cifar

pytestmark = pytest.mark.filterwarnings("ignore:.*is not the official")


# -- image_folder -----------------------------------------------------------------------------

def test_image_folder_reads_classes_in_order_and_balances_a_prefix(regs, image_root):
    data = regs.datasets.create("image_folder", root=str(image_root), normalize="none")
    assert data.splits == ("train", "test") and data.classes == ["cat", "dog", "emu"]
    assert data.num_classes == 3
    assert data.input_shape == (3, 6, 8)
    x, y = data.stored("train")
    assert x.dtype == torch.uint8 and x.shape == (12, 3, 6, 8)
    assert y.tolist()[:6] == [0, 1, 2, 0, 1, 2]  # class by class in turn
    from PIL import Image

    first = np.asarray(Image.open(image_root / "train" / "dog" / "000.png"))
    assert torch.equal(x[1], torch.from_numpy(first).permute(2, 0, 1))
    assert torch.allclose(data.split("train")[0], x.float() / 255)
    limited = regs.datasets.create("image_folder", root=str(image_root), max_examples={"train": 5})
    assert limited.stored("train")[1].tolist() == [0, 1, 2, 0, 1] and limited.size("test") == 6


def test_image_folder_grayscale_and_resize(regs, tmp_path, write_image_folder):
    write_image_folder(tmp_path / "gray", {"train": 2, "val": 1}, mode="L", suffix=".jpg")
    data = regs.datasets.create("image_folder", root=str(tmp_path / "gray"), image_size=[4, 5])
    assert data.splits == ("train", "val") and data.input_shape == (1, 4, 5)
    assert data.split("val")[0].shape == (3, 1, 4, 5)


def test_image_folder_bad_input_names_the_path(regs, tmp_path, write_image_folder):
    with pytest.raises(DataError, match=f"image_folder root {tmp_path / 'nowhere'} does not exist"):
        regs.datasets.create("image_folder", root=str(tmp_path / "nowhere"))
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"no class folders: expected .*flat/<split>/<class>/\*\.png\|jpg"):
        regs.datasets.create("image_folder", root=str(tmp_path / "flat"))
    mixed = write_image_folder(tmp_path / "mixed", {"train": 2, "test": 1})
    write_image_folder(tmp_path / "odd", {"train": 1}, size=(7, 8), classes=("emu",))
    os.replace(tmp_path / "odd" / "train" / "emu" / "000.png", mixed / "train" / "emu" / "001.png")
    data = regs.datasets.create("image_folder", root=str(mixed))
    with pytest.raises(DataError, match=r"mixed/train/emu/001.png is 8x7 but .*/cat/000.png is 8x6 .* "
                                        r"need image_size = \[height, width\]"):
        data.check()
    assert regs.datasets.create("image_folder", root=str(mixed), image_size=[6, 8]).size("train") == 6
    (mixed / "test" / "yak").mkdir()
    with pytest.raises(DataError, match=r"mixed/test/yak is not a class of the 'train' split"):
        regs.datasets.create("image_folder", root=str(mixed))


# -- cifar10 / cifar100 ------------------------------------------------------------------------

def test_cifar_batches_round_trip_in_the_official_python2_format(regs, cifar10_root, random_cifar):
    images, labels = random_cifar(0, 50)
    folder = cifar10_root / "cifar-10-batches-py"
    raw = (folder / "data_batch_1").read_bytes()
    assert raw.startswith(b"\x80\x02}(U\x04data") and b"cnumpy.core.multiarray\n_reconstruct" in raw
    with open(folder / "data_batch_1", "rb") as f:  # as torchvision and the CIFAR page read it
        plain = pickle.load(f, encoding="latin1")
    assert plain["data"].shape == (10, 3072) and plain["batch_label"] == "training batch 1 of 5"
    for root in (cifar10_root, folder):  # torchvision's root, or the batches folder itself
        data = regs.datasets.create("cifar10", root=str(root))
        x, y = data.stored("train")
        assert torch.equal(x, torch.from_numpy(images)) and torch.equal(y, torch.from_numpy(labels))
    assert read_batch(folder / "batches.meta")["label_names"][0] == "class_0"


def test_cifar_checksum_mismatch_is_a_warning_naming_the_file(regs, cifar10_root):
    data = regs.datasets.create("cifar10", root=str(cifar10_root))
    with pytest.warns(UserWarning, match=r"cifar-10-batches-py/test_batch is not the official cifar10 file"):
        data.stored("test")


def test_cifar100_fine_and_coarse_labels(regs, cifar100_root):
    fine = regs.datasets.create("cifar100", root=str(cifar100_root))
    coarse = regs.datasets.create("cifar100", root=str(cifar100_root), labels="coarse")
    assert (fine.num_classes, coarse.num_classes) == (100, 20)
    assert torch.equal(coarse.stored("test")[1], fine.stored("test")[1] // 5)


def test_cifar_missing_batch_and_foreign_pickles_are_refused(regs, tmp_path, random_cifar):
    folder = write_cifar(tmp_path, "cifar10", random_cifar(0, 10), random_cifar(1, 5))
    (folder / "data_batch_3").unlink()
    with pytest.raises(DataError, match=r"is missing data_batch_3 \(.*cifar-10-batches-py/data_batch_3\)"):
        regs.datasets.create("cifar10", root=str(tmp_path))
    (folder / "data_batch_3").write_bytes(pickle.dumps({"data": os.getcwd}))  # code, not data
    with pytest.raises(DataError, match=r"data_batch_3 is not a CIFAR python batch: refers to posix.getcwd"):
        regs.datasets.create("cifar10", root=str(tmp_path)).check()


# -- tensors ------------------------------------------------------------------------------------

def test_tensors_from_npz_and_safetensors(regs, npz_path, tmp_path):
    data = regs.datasets.create("tensors", path=str(npz_path))
    assert data.input_shape == (5,) and data.num_classes == 4 and data.splits == ("train", "test")
    arrays = np.load(npz_path)
    assert torch.equal(data.split("train")[0], torch.from_numpy(arrays["x_train"]))
    from safetensors.torch import save_file

    images = torch.randint(0, 256, (6, 1, 4, 4), dtype=torch.uint8)
    save_file({"x_train": images, "y_train": torch.arange(6) % 2, "x_test": images[:2].clone(),
               "y_test": torch.tensor([0, 1]), "x_val": images[:3].clone(), "y_val": torch.tensor([1, 1, 0])},
              str(tmp_path / "d.safetensors"))
    data = regs.datasets.create("tensors", path=str(tmp_path / "d.safetensors"), num_classes=3, image_size=8)
    assert data.splits == ("train", "test", "val") and data.input_shape == (1, 8, 8)
    x, _ = data.split("val")
    assert x.shape == (3, 1, 8, 8) and 0 <= float(x.min()) and float(x.max()) <= 1  # uint8 scaled


def test_tensors_bad_input_names_the_file(regs, tmp_path):
    with pytest.raises(DataError, match=r"tensors file .*missing.npz does not exist"):
        regs.datasets.create("tensors", path=str(tmp_path / "missing.npz"))
    np.savez(tmp_path / "half.npz", x_train=np.zeros((3, 2)), y_train=np.zeros(3, dtype=int))
    with pytest.raises(DataError, match=r"half.npz has no x_test, y_test; it holds x_train, y_train"):
        regs.datasets.create("tensors", path=str(tmp_path / "half.npz"))
    np.savez(tmp_path / "labels.npz", x_train=np.zeros((3, 2)), y_train=np.array([0, 1, 7]),
             x_test=np.zeros((1, 2)), y_test=np.array([0]))
    data = regs.datasets.create("tensors", path=str(tmp_path / "labels.npz"), num_classes=3)
    with pytest.raises(DataError, match=r"labels.npz \(x_train, y_train\): labels must lie in 0..2 for 3 "
                                        r"classes, but example 2 has label 7"):
        data.check()
    np.savez(tmp_path / "shapes.npz", x_train=np.zeros((3, 2)), y_train=np.zeros(3, dtype=int),
             x_test=np.zeros((2, 5)), y_test=np.zeros(2, dtype=int))
    data = regs.datasets.create("tensors", path=str(tmp_path / "shapes.npz"))
    with pytest.raises(DataError, match=r"shapes.npz \(x_test, y_test\): inputs have shape \(5,\) per "
                                        r"example but the dataset stores \(2,\)"):
        data.check()


# -- preparing batches ----------------------------------------------------------------------------

def test_normalisation_from_the_training_split_the_model_or_given(regs, cifar10_root):
    data = regs.datasets.create("cifar10", root=str(cifar10_root))
    x, _ = data.split("train")
    assert torch.allclose(x.mean((0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(x.std((0, 2, 3), correction=0), torch.ones(3), atol=1e-4)
    given = regs.datasets.create("cifar10", root=str(cifar10_root),
                                 normalize={"mean": 0.5, "std": [0.5, 0.25, 1]})
    raw = data.stored("test")[0][:, :, :2, :2].float() / 255
    expected = (raw - 0.5) / torch.tensor([0.5, 0.25, 1]).reshape(1, 3, 1, 1)
    assert torch.allclose(given.split("test")[0][:, :, :2, :2], expected)
    by_model = regs.datasets.create("cifar10", root=str(cifar10_root), normalize="model")
    with pytest.raises(ConfigError, match="normalize = 'model' but no model was bound"):
        by_model.split("test")
    pytest.importorskip("timm")
    by_model.bind_model(regs.models.create("timm", input_shape=(3, 32, 32), num_classes=10, arch="resnet18"))
    imagenet = torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225])
    assert torch.allclose(by_model.split("test")[0][:, :, :2, :2],
                          (raw - imagenet[0]) / imagenet[1].reshape(1, 3, 1, 1), atol=1e-6)
    with pytest.raises(ConfigError, match="model 'mlp' has no data config"):
        by_model.bind_model(regs.models.create("mlp", input_shape=(3, 32, 32), num_classes=10, widths=[4]))
    with pytest.raises(ConfigError, match="normalize = 'imagenet' must be one of 'dataset', 'none', 'model'"):
        regs.datasets.create("cifar10", root=str(cifar10_root), normalize="imagenet")
    with pytest.raises(ConfigError, match="normalize is 'dataset', 'none', 'model' or {mean = "):
        regs.datasets.create("cifar10", root=str(cifar10_root), normalize={"mean": 0.5})


def test_augmentation_only_for_training_batches_and_reproducible(regs, cifar10_root):
    plain = regs.datasets.create("cifar10", root=str(cifar10_root))
    augmented = regs.datasets.create("cifar10", root=str(cifar10_root), augment=True)

    def first(dataset, seed, augment):
        generator = torch.Generator().manual_seed(seed)
        return next(dataset.batches("train", 16, shuffle=True, generator=generator, augment=augment))[0]

    assert torch.equal(first(augmented, 0, False), first(plain, 0, False))  # evaluation: never
    assert torch.equal(first(plain, 0, True), first(plain, 0, False))  # augment off by default
    a, b = first(augmented, 0, True), first(augmented, 0, True)
    assert torch.equal(a, b) and not torch.equal(a, first(plain, 0, True))
    x = torch.arange(2 * 32 * 32, dtype=torch.float32).reshape(2, 1, 32, 32)
    from ridgeline.plugins.datasets.files import random_crop_and_flip

    out = random_crop_and_flip(x, torch.Generator().manual_seed(1))
    for image, source in zip(out, x):  # every output row is a shifted, maybe flipped source row
        row = image[0, 16][image[0, 16] != 0]
        values = source[0].flatten().tolist()
        assert all(v in values for v in row.tolist()) and len(row) >= 28


@pytest.mark.parametrize(("name", "where"), [("cifar10", "root"), ("cifar100", "root"),
                                           ("image_folder", "root"), ("tensors", "path")])
def test_normalize_lists_its_choices_and_a_bad_value_names_them(regs, name, where):
    from ridgeline.core.plugin_host.options import factory_options

    option = {o.name: o for o in factory_options(regs.datasets.get(name), "datasets")}["normalize"]
    assert option.choices == ("dataset", "none", "model")
    assert option.type == "str | Mapping[str, float | Sequence[float]]"
    regs.datasets.check(name, {where: "data", "normalize": {"mean": [0.5, 0.4, 0.4], "std": 0.25}})
    with pytest.raises(ConfigError, match=re.escape(
            f"dataset {name!r}: option normalize = 'imagenet' must be one of 'dataset', 'none', 'model', "
            "or Mapping[str, float | Sequence[float]] (got str)")):
        regs.datasets.check(name, {where: "data", "normalize": "imagenet"})


# -- the cache ------------------------------------------------------------------------------------

def test_decoded_splits_are_cached_reused_and_invalidated(regs, tmp_path, monkeypatch, write_image_folder):
    root = write_image_folder(tmp_path / "images", {"train": 3, "test": 1})
    cache = tmp_path / "cache"

    def load(**options):
        data = regs.datasets.create("image_folder", root=str(root), **options)
        data.use_cache(cache)
        return data, data.stored("train")[0]

    first, x = load()
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 1 and files[0].startswith("image_folder-train-")
    assert files[0].endswith(".safetensors")
    calls = []
    original = type(first).read
    monkeypatch.setattr(type(first), "read", lambda self, *a: calls.append(a) or original(self, *a))
    _, again = load()
    assert calls == [] and torch.equal(again, x)  # read back, not decoded
    image = root / "train" / "dog" / "000.png"
    write_image_folder(tmp_path / "other", {"train": 1}, seed=9, classes=("dog",))
    os.replace(tmp_path / "other" / "train" / "dog" / "000.png", image)
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a changed file, a new time
    _, changed = load()
    assert len(calls) == 1 and not torch.equal(changed, x)  # decoded again
    _, resized = load(image_size=3)
    assert len(calls) == 2 and resized.shape[-2:] == (3, 3) and len(list(cache.iterdir())) == 2
    (root / "train" / "emu" / "003.png").write_bytes(image.read_bytes())  # a file added
    assert len(load()[1]) == 10 and len(calls) == 3
    _, _ = load(cache=False)
    assert len(calls) == 4 and len(list(cache.iterdir())) == 2  # no cache written


def test_a_cache_that_cannot_be_written_is_a_warning_naming_it_and_the_data_is_used(
        regs, tmp_path, monkeypatch, write_image_folder):
    root = write_image_folder(tmp_path / "images", {"train": 2, "test": 1})
    expected = regs.datasets.create("image_folder", root=str(root), cache=False).stored("train")[0]
    blocked = tmp_path / "a-file"
    blocked.write_text("")  # a folder cannot be made under a file (as a Ray node may fail to make one)
    folders = [blocked / "cache"] + ([Path("/proc/nope")] if Path("/proc/self").exists() else [])
    for folder in folders:
        data = regs.datasets.create("image_folder", root=str(root), cache=str(folder))
        with pytest.warns(UserWarning, match=f"cannot write the data cache {re.escape(str(folder))}/"
                                             "image_folder-train-.*using the decoded split"):
            x, _ = data.stored("train")
        assert torch.equal(x, expected)
    given = regs.datasets.create("image_folder", root=str(root))
    given.use_cache(blocked / "data-cache")  # the pipeline's folder, on a node that cannot make it
    with pytest.warns(UserWarning, match="cannot write the data cache"):
        assert torch.equal(given.stored("train")[0], expected)

    import safetensors.torch
    from safetensors import SafetensorError

    def disk_full(tensors, filename, metadata=None):  # what safetensors raises on a full disk
        Path(filename).write_bytes(b"half a file")
        raise SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, "
                              "message: \"No space left on device\" })")

    monkeypatch.setattr(safetensors.torch, "save_file", disk_full)
    cache = tmp_path / "cache"
    full = regs.datasets.create("image_folder", root=str(root), cache=str(cache))
    with pytest.warns(UserWarning, match="No space left on device"):
        assert torch.equal(full.stored("train")[0], expected)
    assert list(cache.iterdir()) == []  # the partial file is removed, no cache is left behind


@pytest.mark.cuda
def test_batches_move_as_uint8_and_are_prepared_on_the_device(regs, cifar10_root):
    data = regs.datasets.create("cifar10", root=str(cifar10_root), image_size=16, augment=True)
    xb, yb = next(data.batches("train", 8, device="cuda"))
    assert xb.device.type == yb.device.type == "cuda" and xb.shape == (8, 3, 16, 16)
    torch.testing.assert_close(xb.cpu(), data.split("train")[0][:8], rtol=1e-5, atol=1e-5)

    def augmented(device):
        batches = data.batches("train", 8, shuffle=True, generator=torch.Generator().manual_seed(0),
                               device=device, augment=True)
        return next(batches)[0]

    torch.testing.assert_close(augmented("cuda").cpu(), augmented("cpu"), rtol=1e-5, atol=1e-5)


# -- evaluation keeps the stored uint8 split and prepares each batch ------------------------------

def _float_copies(shape):
    """Live float tensors holding a whole split of ``shape`` (n, *input_shape)."""
    gc.collect()
    return [o for o in gc.get_objects()
            if isinstance(o, torch.Tensor) and o.is_floating_point() and tuple(o.shape) == tuple(shape)]


def _whole_split_sums(model, state, data, split, batch_size):
    """The numbers as evaluation gave them before: the whole split prepared, then sliced."""
    x, y = data.stored(split)
    x = data.prepare(x)
    module = model.build()
    module.load_state_dict(state)
    module.eval()
    loss, correct = torch.zeros((), dtype=torch.float64), 0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            logits, labels = module(x[start:start + batch_size]).float(), y[start:start + batch_size]
            loss += torch.nn.functional.cross_entropy(logits, labels, reduction="sum").double()
            correct += int((logits.argmax(1) == labels).sum())
    return float(loss) / len(y), correct / len(y)


def _cifar_and_convnet(regs, root):
    data = regs.datasets.create("cifar10", root=str(root), image_size=12)  # 32 x 32 stored, resized per batch
    model = regs.models.create("convnet", input_shape=data.input_shape, num_classes=10, widths=[4, 6])
    return data, model


def test_evaluation_holds_no_float_copy_of_the_split_and_gives_the_same_numbers(regs, cifar10_root):
    data, model = _cifar_and_convnet(regs, cifar10_root)
    states = [model.init_state(0), model.init_state(1)]
    evaluator = Evaluator(model.build(), data, batch_size=7)
    got = [evaluator.evaluate(s, "test") for s in states] + evaluator.evaluate_many(states, "test")
    held, labels = evaluator.stored("test")
    assert held.dtype == torch.uint8 and held.shape == (20, 3, 32, 32) and len(labels) == 20
    assert _float_copies((20, *data.input_shape)) == []  # neither the evaluator nor the dataset keeps one
    for result, state in zip(got, states + states):
        loss, accuracy = _whole_split_sums(model, state, data, "test", 7)
        assert result.loss == loss and result.accuracy == accuracy  # exactly: preparation is per example
    x, _ = data.split("test")  # scripts still get a whole split prepared, made on demand
    assert x.dtype == torch.float32 and x.shape == (20, *data.input_shape)


@pytest.mark.cuda
@pytest.mark.parametrize("fits", [True, False])
def test_cuda_evaluation_of_a_file_dataset_keeps_uint8_on_the_device_or_the_datasets_own(regs, cifar10_root,
                                                                                          monkeypatch, fits):
    data, model = _cifar_and_convnet(regs, cifar10_root)
    states = [model.init_state(0), model.init_state(1)]
    if not fits:  # the split does not fit: it stays on the host, the dataset's own tensor (no pinned
        # second copy), and moves batch by batch, each batch pinned
        monkeypatch.setattr(evaluator_module, "DEVICE_DATA_FRACTION", 0.0)
    gpu = Evaluator(model.build(), data, device="cuda", batch_size=7, points_per_batch=2)
    got = gpu.evaluate_many(states, "test")
    held, labels = gpu.stored("test")
    assert held.dtype == torch.uint8 and labels.device.type == "cuda"
    if fits:
        assert held.device.type == "cuda"
    else:
        assert held.device.type == "cpu" and held.data_ptr() == data.stored("test")[0].data_ptr()
        assert gpu.prepare(held[:3]).device.type == "cuda"
    assert not any(o.device.type == "cuda" for o in _float_copies((20, *data.input_shape)))
    cpu = [Evaluator(model.build(), data, batch_size=7).evaluate(s, "test") for s in states]
    assert [e.accuracy for e in got] == [e.accuracy for e in cpu]
    torch.testing.assert_close([e.loss for e in got], [e.loss for e in cpu], rtol=1e-5, atol=0)
    stats = [x for x, _ in gpu.batches("test", limit=10, batch_size=4)]
    assert [len(x) for x in stats] == [4, 4, 2] and all(x.device.type == "cuda" for x in stats)
