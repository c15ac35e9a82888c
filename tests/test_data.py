import json
import warnings

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import data_dir
from unet_tf import DataConfig, DataError, make_dataset
from unet_tf.config import AugmentConfig
from unet_tf.data import load_source, parse_spec
from unet_tf.data.synthetic import make_arrays

NO_AUG = AugmentConfig.none()


def first_batch(config, **kwargs):
    ds, source = make_dataset(config, **kwargs)
    x, y = next(iter(ds))
    return x.numpy(), y.numpy(), source


# --- synthetic -------------------------------------------------------------------------------

def test_synthetic_is_deterministic_by_seed_and_has_all_classes():
    a_img, a_mask = make_arrays(6, seed=3, size=64)
    b_img, b_mask = make_arrays(6, seed=3, size=64)
    c_img, _ = make_arrays(6, seed=4, size=64)
    np.testing.assert_array_equal(a_img, b_img)
    np.testing.assert_array_equal(a_mask, b_mask)
    assert not np.array_equal(a_img, c_img)
    assert set(np.unique(make_arrays(20, seed=0, size=64)[1])) == {0, 1, 2, 3}


def test_synthetic_pipeline_batches_and_training_batches_repeat_under_seed():
    cfg = DataConfig(num_examples=12, batch_size=4, image_size=(64, 64))
    x, y, source = first_batch(cfg)
    assert x.shape == (4, 64, 64, 3) and x.dtype == np.float32
    assert y.shape == (4, 64, 64, 1) and y.dtype == np.int32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert source.class_names == ("background", "disc", "square", "triangle")
    first = first_batch(cfg, training=True, subset="training")
    again = first_batch(cfg, training=True, subset="training")
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])


def test_seeded_validation_subset_is_disjoint_from_training():
    cfg = DataConfig(num_examples=20, batch_size=32, image_size=(32, 32), augment=NO_AUG)
    tr = load_source(cfg, subset="training")
    va = load_source(cfg, subset="validation")
    assert (tr.size, va.size) == (16, 4)
    train_imgs = {x.numpy().tobytes() for x, _ in tr.examples}
    assert not any(x.numpy().tobytes() in train_imgs for x, _ in va.examples)


def test_unknown_spec_names_what_works():
    with pytest.raises(DataError, match="use synthetic, tfds:NAME, oxford-pets:DIR or folder"):
        parse_spec("s3:bucket")
    with pytest.raises(DataError, match="needs an argument"):
        parse_spec("folder:")


# --- Oxford pets archive layout --------------------------------------------------------------

def test_oxford_pets_trimaps_become_pet_background_border():
    root = data_dir("oxford_pets_sample")
    cfg = DataConfig(spec=f"oxford-pets:{root}", num_examples=4, batch_size=4, augment=NO_AUG)
    x, y, source = first_batch(cfg)
    assert source.class_names == ("pet", "background", "border")
    assert x.shape == (4, 128, 128, 3)
    assert set(np.unique(y)) <= {0, 1, 2}
    # the raw trimap of the first listed image, remapped by hand: 1,2,3 -> 0,1,2
    name = (root / "annotations" / "trainval.txt").read_text().split()[0]
    raw = np.asarray(Image.open(root / "annotations" / "trimaps" / f"{name}.png"))
    nearest = tf.image.resize(raw[..., None], (128, 128), method="nearest").numpy()
    np.testing.assert_array_equal(y[0], nearest - 1)


def test_oxford_pets_split_files_and_missing_split(tmp_path):
    root = data_dir("oxford_pets_sample")
    src = load_source(DataConfig(spec=f"oxford-pets:{root}"))
    assert src.size == 300 and "trainval" in src.description
    with pytest.raises(DataError, match=r"test.txt is missing; available splits: \['trainval'"):
        load_source(DataConfig(spec=f"oxford-pets:{root}", split="test"))
    val = load_source(DataConfig(spec=f"oxford-pets:{root}"), subset="validation")
    assert val.size == 60


# --- folders ---------------------------------------------------------------------------------

def test_isbi_folder_with_flags_maps_0_membrane_255_interior():
    root = data_dir("isbi2012_em")
    cfg = DataConfig(spec=f"folder:{root}", class_names=("membrane", "interior"),
                     mask_values=(0, 255), num_examples=2, batch_size=2, augment=NO_AUG)
    x, y, source = first_batch(cfg)
    assert source.channels == 1 and x.shape == (2, 128, 128, 1)
    raw = np.asarray(Image.open(root / "masks" / "00.png"))
    nearest = tf.image.resize(raw[..., None], (128, 128), method="nearest").numpy()
    np.testing.assert_array_equal(y[0], (nearest == 255).astype(np.int32))


def test_camvid_split_folders_and_void_is_ignored():
    root = data_dir("camvid")
    cfg = DataConfig(spec=f"folder:{root}", split="val", class_names=tuple("abcdefghijk"),
                     ignore_values=(11,), num_examples=3, batch_size=3, image_size=(96, 128),
                     augment=NO_AUG)
    x, y, source = first_batch(cfg)
    assert x.shape == (3, 96, 128, 3)
    assert set(np.unique(y)) <= set(range(11)) | {255}
    assert 255 in np.unique(y)  # void pixels exist and are marked ignored
    with pytest.raises(DataError, match=r"no split 'test'; available splits: \['train', 'val'\]"):
        load_source(DataConfig(spec=f"folder:{root}", split="test"))


def make_folder(tmp_path, n=3, size=(20, 16), values=(0, 1)):
    (tmp_path / "images").mkdir(parents=True)
    (tmp_path / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, size[::-1] + (3,), np.uint8)).save(
            tmp_path / "images" / f"{i}.png")
        Image.fromarray(rng.choice(values, size[::-1]).astype(np.uint8)).save(
            tmp_path / "masks" / f"{i}.png")
    return tmp_path


def test_sidecar_file_names_classes_and_palette_masks(tmp_path):
    root = make_folder(tmp_path, values=(0, 1))
    palette = [[0, 0, 0], [255, 0, 0]]
    for p in (root / "masks").iterdir():  # rewrite masks as RGB colour masks
        idx = np.asarray(Image.open(p))
        Image.fromarray(np.array(palette, np.uint8)[idx]).save(p)
    meta = {"class_names": ["bg", "red"], "palette": palette}
    (root / "dataset.json").write_text(json.dumps(meta))
    cfg = DataConfig(spec=f"folder:{root}", image_size=(16, 16), batch_size=3, augment=NO_AUG)
    _, y, source = first_batch(cfg)
    assert source.class_names == ("bg", "red")
    assert set(np.unique(y)) == {0, 1}


def test_mask_value_outside_mapping_names_the_file(tmp_path):
    root = make_folder(tmp_path, values=(0, 1, 7))
    cfg = DataConfig(spec=f"folder:{root}", class_names=("a", "b"))
    with pytest.raises(DataError, match=r"masks/0.png: mask values \[7\] are outside"):
        load_source(cfg)


def test_truncated_image_is_an_error_or_skipped_with_a_count(tmp_path):
    root = make_folder(tmp_path, n=3)
    bad = root / "images" / "1.png"
    bad.write_bytes(bad.read_bytes()[:60])
    cfg = DataConfig(spec=f"folder:{root}", class_names=("a", "b"))
    with pytest.raises(DataError, match=r"images/1.png: unreadable image"):
        load_source(cfg)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        source = load_source(DataConfig(spec=f"folder:{root}", class_names=("a", "b"),
                                        skip_bad=True))
    assert source.size == 2
    assert any("skipped 1 of 3" in str(w.message) for w in caught)


def test_size_mismatch_and_missing_mask_and_empty_folder(tmp_path):
    root = make_folder(tmp_path / "a", n=2)
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(root / "masks" / "0.png")
    with pytest.raises(DataError, match=r"masks/0.png: mask is 5x5 but image 0.png is 20x16"):
        load_source(DataConfig(spec=f"folder:{root}", class_names=("a", "b")))
    (root / "masks" / "1.png").unlink()
    with pytest.raises(DataError, match=r"have no mask .*first: 1.png"):
        load_source(DataConfig(spec=f"folder:{root}", class_names=("a", "b")))
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    (empty / "masks").mkdir()
    with pytest.raises(DataError, match="holds no image files"):
        load_source(DataConfig(spec=f"folder:{empty}"))
    with pytest.raises(DataError, match="does not exist"):
        load_source(DataConfig(spec=f"folder:{tmp_path / 'nope'}"))


def test_inferred_mapping_uses_values_found(tmp_path, caplog):
    root = make_folder(tmp_path, values=(0, 255))
    source = load_source(DataConfig(spec=f"folder:{root}"))
    assert source.class_names == ("class_0", "class_255")
    assert "no class mapping given" in caplog.text


def test_gif_and_rgba_files_named_jpg_are_read(tmp_path):
    root = make_folder(tmp_path, n=2)
    img = Image.open(root / "images" / "0.png")
    img.save(root / "images" / "0.jpg", format="GIF")  # a GIF with a .jpg name, as in Oxford
    (root / "images" / "0.png").unlink()
    img.convert("RGBA").save(root / "images" / "1.jpg", format="PNG")
    (root / "images" / "1.png").unlink()
    x, _, _ = first_batch(DataConfig(spec=f"folder:{root}", class_names=("a", "b"),
                                     batch_size=2, image_size=(16, 16), augment=NO_AUG))
    assert x.shape == (2, 16, 16, 3)


# --- tfds ------------------------------------------------------------------------------------

def _mock_pets(num=6, max_label=3):
    def as_dataset(self, *args, **kwargs):
        def gen():
            rng = np.random.default_rng(0)
            for i in range(num):
                h, w = 40 + i, 52
                yield {
                    "image": rng.integers(0, 255, (h, w, 3), dtype=np.uint8),
                    "segmentation_mask": rng.integers(0, max_label, (h, w, 1), dtype=np.uint8),
                    "label": 1, "species": 0, "file_name": f"{i}.jpg",
                    "head_bbox": np.zeros(4, np.float32),
                }
        return tf.data.Dataset.from_generator(
            gen, output_signature=self.info.features.get_tensor_spec())
    return as_dataset


def test_tfds_oxford_iiit_pet_through_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(as_dataset_fn=_mock_pets()):
        cfg = DataConfig(spec="tfds:oxford_iiit_pet", image_size=(32, 32), batch_size=3,
                         augment=NO_AUG)
        x, y, source = first_batch(cfg)
    assert source.class_names == ("pet", "background", "border")
    assert x.shape == (3, 32, 32, 3) and y.shape == (3, 32, 32, 1)
    assert set(np.unique(y)) <= {0, 1, 2}


def test_tfds_mask_values_outside_classes_fail_loudly():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(as_dataset_fn=_mock_pets(max_label=9)):
        ds, _ = make_dataset(DataConfig(spec="tfds:oxford_iiit_pet", image_size=(32, 32),
                                        augment=NO_AUG))
        with pytest.raises(tf.errors.InvalidArgumentError, match="mask values outside"):
            next(iter(ds))


def test_tfds_dataset_without_mask_feature_is_rejected():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=2):
        with pytest.raises(DataError, match="needs an image feature and a segmentation-mask"):
            load_source(DataConfig(spec="tfds:mnist"))


def test_tfds_without_download_fails_at_once_when_not_prepared(tmp_path, monkeypatch):
    import time

    pytest.importorskip("tensorflow_datasets")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))  # nothing prepared here
    start = time.time()
    with pytest.raises(DataError, match="could not be loaded.*--no-download"):
        load_source(DataConfig(spec="tfds:oxford_iiit_pet", download=False))
    assert time.time() - start < 30
