"""Neural style transfer: backbones (shipped and user-supplied), per-image optimisation, style net."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from generators.checkpoint import load_generator, save_generator
from generators.nst.backbones import VGG19, BackboneError, EfficientNetLite0, gram, load_backbone
from generators.nst.model import StyleNet, StyleNetConfig
from generators.nst.optimize import stylize
from generators.nst.train import NSTLosses, StyleNetTrainer
from sim2real_env.cli import main
from tests.test_generators import write_images


@pytest.fixture(scope="module")
def lite0() -> EfficientNetLite0:
    return EfficientNetLite0.pretrained()


def test_shipped_imagenet_weights_load_and_differ_from_random(lite0: EfficientNetLite0) -> None:
    x = torch.rand(2, 3, 32, 40) * 2 - 1
    feats = lite0.features(x)
    assert set(lite0.style_layers) | {lite0.content_layer} <= set(feats)
    assert feats["block2"].shape == (2, 24, 8, 10)
    random = EfficientNetLite0().eval()
    assert not torch.allclose(random.features(x)["block10"], feats["block10"])
    assert all(not p.requires_grad for p in lite0.parameters())


def test_gram_is_normalised_and_symmetric() -> None:
    f = torch.rand(2, 4, 3, 5)
    g = gram(f)
    assert g.shape == (2, 4, 4) and torch.allclose(g, g.transpose(1, 2))
    assert torch.allclose(g[0, 0, 0], (f[0, 0] ** 2).sum() / (4 * 15))


def test_user_vgg19_state_dict_pth_and_safetensors(tmp_path: Path) -> None:
    reference = VGG19()
    state = {
        k.replace("features_net.", "features."): v for k, v in reference.state_dict().items() if "features_net" in k
    }
    torch.save({**state, "classifier.0.weight": torch.zeros(2, 2)}, tmp_path / "vgg19.pth")
    save_file(state, str(tmp_path / "vgg19.safetensors"))
    for name in ("vgg19.pth", "vgg19.safetensors"):
        model = load_backbone("vgg19", str(tmp_path / name))
        feats = model.features(torch.zeros(1, 3, 32, 32))
        assert feats["relu4_2"].shape == (1, 512, 4, 4)
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "partial.pth")
    with pytest.raises(BackboneError, match="not a torchvision VGG-19 state dict"):
        load_backbone("vgg19", str(tmp_path / "partial.pth"))
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(BackboneError, match="unreadable"):
        load_backbone("vgg19", str(tmp_path / "junk.pth"))
    with pytest.raises(BackboneError, match="needs vgg19_path"):
        load_backbone("vgg19")
    with pytest.raises(BackboneError, match="Did you mean 'vgg19'"):
        load_backbone("vgg91")


def test_per_image_optimisation_moves_toward_the_style(lite0: EfficientNetLite0) -> None:
    torch.manual_seed(0)
    content = torch.zeros(1, 3, 32, 40) - 0.2
    content[..., 10:20] = 0.8
    style = torch.rand(1, 3, 32, 40) * 2 - 1  # noise texture
    out, history = stylize(content, style, lite0, steps=25, lr=0.05)
    assert out.shape == content.shape and out.min() >= -1 and out.max() <= 1
    assert history[-1] < 0.5 * history[0]


def test_style_net_training_lowers_the_style_loss(lite0: EfficientNetLite0) -> None:
    torch.manual_seed(0)
    model = StyleNet(StyleNetConfig(image_size=(32, 40), width=4, blocks=1))
    trainer = StyleNetTrainer(model, NSTLosses(), lr=5e-3, beta1=0.9, seed=0)
    sim = torch.rand(2, 3, 32, 40) * 0.4 - 0.2
    real = torch.rand(2, 3, 32, 40) * 2 - 1
    styles = [trainer.train_step(sim, real)["style"] for _ in range(30)]
    assert np.mean(styles[-3:]) < 0.7 * np.mean(styles[:3])
    assert trainer.sample_columns(sim)[0].shape == sim.shape


def test_style_net_checkpoint_and_direction(tmp_path: Path) -> None:
    model = StyleNet(StyleNetConfig(image_size=(16, 20), width=4, blocks=1))
    frames = np.random.default_rng(0).integers(0, 256, (2, 16, 20, 3), dtype=np.uint8)
    loaded = load_generator(save_generator(model, tmp_path / "nst"), method="nst")
    np.testing.assert_array_equal(model.translate(frames), loaded.translate(frames))
    with pytest.raises(ValueError, match="only translates 'sim->real'"):
        StyleNet(StyleNetConfig(), direction="real->canonical")
    with pytest.raises(ValueError, match="style image .* is missing or unreadable"):
        StyleNetTrainer(model, NSTLosses(style_image=str(tmp_path / "none.png")), lr=1e-3, beta1=0.9, seed=0)


def test_stylize_cli(tmp_path: Path) -> None:
    write_images(tmp_path / "frames", 2, 0, (60, 60, 60))
    write_images(tmp_path / "style", 1, 1, (30, 90, 140))
    style = next((tmp_path / "style").iterdir())
    args = ["stylize", "--style", str(style), "--size", "40x32", "--steps", "3", "--quiet"]
    assert main([*args, str(tmp_path / "frames"), str(tmp_path / "out")]) == 0
    outputs = sorted((tmp_path / "out").glob("*.png"))
    assert len(outputs) == 2 and cv2.imread(str(outputs[0])).shape == (32, 40, 3)
    assert main([*args, str(tmp_path / "missing"), str(tmp_path / "out2")]) == 2
