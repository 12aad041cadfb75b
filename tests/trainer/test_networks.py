"""The networks: the seed's exactly as SEED.md lists it, ours within its compute budget."""

from __future__ import annotations

import numpy as np
import pytest

from colorizer_trainer import color, networks
from colorizer_trainer.flops import count_flops

OUR_GFLOPS_BUDGET = 6.0


def test_seed_generator_maps_200x200_gray_to_200x200_rgb_with_the_seeds_parameter_count():
    generator = networks.build_seed_generator()
    assert generator.output_shape == (None, 200, 200, 3)
    assert generator.count_params() == 1_406_403  # "1.41 M parameters"


def test_seed_generator_costs_about_92_gflops_per_image():
    gflops = count_flops(networks.build_seed_generator(), (200, 200, 1)) / 1e9
    assert gflops == pytest.approx(92, rel=0.01)


def test_seed_generator_skips_join_encoder_and_decoder_at_matching_sizes():
    generator = networks.build_seed_generator()
    concats = [layer for layer in generator.layers if layer.name.endswith("_concat")]
    assert [layer.output.shape[1] for layer in concats] == [176, 184, 192]
    assert [layer.output.shape[-1] for layer in concats] == [256, 128, 64]


def test_seed_discriminator_outputs_one_probability_per_image():
    discriminator = networks.build_seed_discriminator()
    probability = discriminator(np.ones((2, 200, 200, 3), np.float32)).numpy()
    assert probability.shape == (2, 1)
    assert ((probability >= 0) & (probability <= 1)).all()
    assert [layer.units for layer in discriminator.layers if hasattr(layer, "units")] == [512, 128, 16, 1]


def _inputs(height: int, width: int, *, gray: np.ndarray | None = None, hints: np.ndarray | None = None) -> list[np.ndarray]:
    gray = np.full((1, height, width, 1), 0.5, np.float32) if gray is None else gray
    return [gray, np.zeros((1, height, width, 4), np.float32) if hints is None else hints]


@pytest.mark.parametrize(
    "head, scene_encoder, hints_in_decoder, scene_detail",
    [
        ("classes", False, False, False),
        ("regression", False, False, False),
        ("regression", True, False, False),
        ("regression", True, True, False),
        ("regression", True, False, True),
    ],
)
def test_our_generator_stays_within_its_compute_budget(head, scene_encoder, hints_in_decoder, scene_detail):
    config = networks.UNetConfig(
        head=head, scene_encoder=scene_encoder, hints_in_decoder=hints_in_decoder, scene_detail=scene_detail
    )
    generator = networks.build_unet_generator(config)
    gflops = count_flops(generator, [(200, 200, 1), (200, 200, 4)]) / 1e9
    assert gflops <= OUR_GFLOPS_BUDGET


def test_the_width_multiplier_scales_every_stage_of_the_unet():
    assert networks.scaled_widths(0.5) == (8, 16, 32, 64) and networks.scaled_widths(0.01) == (1, 1, 1, 1)
    generator = networks.build_unet_generator(networks.UNetConfig(widths=networks.scaled_widths(0.5)))
    stages = ("enc1", "enc2", "enc3", "enc4_down", "dec3", "dec2")
    assert [generator.get_layer(name).filters for name in stages] == [8, 16, 32, 64, 32, 16]


def test_four_at_half_width_or_eight_at_035_cost_about_what_one_full_width_unet_does():
    def gflops(members: int, width: float) -> float:
        config = networks.UNetConfig(scene_encoder=True, members=members, widths=networks.scaled_widths(width))
        return count_flops(networks.build_unet_generator(config), [(200, 200, 1), (200, 200, 4)]) / 1e9

    one_full_width = gflops(1, 1.0)
    assert gflops(4, 0.5) == pytest.approx(one_full_width, rel=0.05)
    assert gflops(8, 0.35) == pytest.approx(one_full_width, rel=0.05)


def test_members_share_the_one_backbone_and_each_has_its_own_unet():
    config = networks.UNetConfig(scene_encoder=True, members=3, widths=networks.scaled_widths(0.25))
    generator = networks.build_unet_generator(config)

    assert [layer.name for layer in generator.layers if layer.name.endswith("scene_encoder")] == ["scene_encoder"]
    assert [generator.get_layer(f"m{member}_enc1").filters for member in range(3)] == [4, 4, 4]
    assert generator.output_shape == (None, None, None, 2 * 3)


def test_members_start_from_their_own_weights_so_their_colours_differ():
    config = networks.UNetConfig(members=2, widths=networks.scaled_widths(0.25))
    gray = np.random.default_rng(0).uniform(size=(1, 16, 16, 1)).astype(np.float32)
    chroma = networks.build_unet_generator(config)(_inputs(16, 16, gray=gray)).numpy()
    assert not np.allclose(chroma[..., :2], chroma[..., 2:])


def test_unet_config_rejects_members_without_the_regression_head():
    with pytest.raises(ValueError, match="members"):
        networks.UNetConfig(head="classes", members=2)


@pytest.mark.parametrize("height, width", [(200, 200), (64, 96), (8, 8)])
def test_the_classes_head_predicts_bin_logits_at_a_quarter_of_the_resolution(height, width):
    logits = networks.build_unet_generator(networks.UNetConfig(head="classes"))(_inputs(height, width)).numpy()
    assert logits.shape == (1, height // 4, width // 4, len(color.gamut_ab_bins()))


@pytest.mark.parametrize("scene_encoder, scene_detail", [(False, False), (True, False), (True, True)])
@pytest.mark.parametrize("height, width", [(200, 200), (64, 96), (8, 8)])
def test_the_regression_head_is_fully_convolutional_over_multiples_of_8(height, width, scene_encoder, scene_detail):
    config = networks.UNetConfig(head="regression", scene_encoder=scene_encoder, scene_detail=scene_detail)
    generator = networks.build_unet_generator(config)
    chroma = generator(_inputs(height, width)).numpy()
    assert chroma.shape == (1, height, width, 2)
    assert np.abs(chroma).max() <= 1.0  # tanh: Lab (a, b) / AB_SCALE


def test_without_hints_the_generator_takes_gray_alone():
    generator = networks.build_unet_generator(networks.UNetConfig(hints=False, head="classes"))
    assert len(generator.inputs) == 1
    assert generator(np.ones((1, 16, 16, 1), np.float32)).shape[1:3] == (4, 4)


def test_a_hint_reaches_the_output_and_an_unmasked_hint_colour_does_not():
    generator = networks.build_unet_generator()
    baseline = generator(_inputs(32, 32)).numpy()
    unmasked = np.zeros((1, 32, 32, 4), np.float32)
    unmasked[..., 0] = 1.0  # red, but the mask is 0 everywhere
    assert np.allclose(generator(_inputs(32, 32, hints=unmasked)).numpy(), baseline)
    hinted = unmasked.copy()
    hinted[:, 14:19, 14:19, 3] = 1.0
    assert not np.allclose(generator(_inputs(32, 32, hints=hinted)).numpy(), baseline)


@pytest.mark.parametrize(
    "head, joins", [("regression", {"dec3_concat": 4, "dec2_concat": 2}), ("classes", {"dec3_concat": 4})]
)
def test_hints_in_decoder_join_each_decoder_stage_at_its_resolution(head, joins):
    generator = networks.build_unet_generator(networks.UNetConfig(head=head, hints_in_decoder=True))
    for join, factor in joins.items():
        hints_down = generator.get_layer(f"hints_down{factor}").output
        assert any(tensor is hints_down for tensor in generator.get_layer(join).input)
        assert hints_down.shape[-1] == 3  # chroma and mask, as HintFeatures gives them


def test_unet_config_rejects_hints_in_decoder_without_hints():
    with pytest.raises(ValueError, match="hints_in_decoder"):
        networks.UNetConfig(hints=False, hints_in_decoder=True)


@pytest.mark.parametrize(
    "head, joins", [("regression", {"dec3_concat": 4, "dec2_concat": 2}), ("classes", {"dec3_concat": 4})]
)
def test_scene_detail_joins_each_decoder_stage_at_its_resolution(head, joins):
    generator = networks.build_unet_generator(networks.UNetConfig(head=head, scene_encoder=True, scene_detail=True))
    for join, factor in joins.items():
        scene_detail = generator.get_layer(f"scene_detail{factor}").output
        assert any(tensor is scene_detail for tensor in generator.get_layer(join).input)
        assert scene_detail.shape[-1] == networks.SCENE_DETAIL_WIDTH


def test_unet_config_rejects_scene_detail_without_the_scene_encoder():
    with pytest.raises(ValueError, match="scene_detail"):
        networks.UNetConfig(scene_encoder=False, scene_detail=True)


def test_global_context_lets_a_far_corner_change_the_colour_everywhere():
    generator = networks.build_unet_generator(networks.UNetConfig(bottleneck_dilations=()))
    gray = np.full((1, 96, 96, 1), 0.5, np.float32)
    changed = gray.copy()
    changed[:, -8:, -8:] = 1.0  # bottom-right corner only
    hints = np.zeros((1, 96, 96, 4), np.float32)
    before, after = (generator([image, hints]).numpy() for image in (gray, changed))
    assert not np.allclose(before[:, :4, :4], after[:, :4, :4])  # the top-left corner sees it


def test_patch_discriminator_judges_one_patch_per_8x8_block():
    discriminator = networks.build_patch_discriminator()
    logits = discriminator([np.ones((2, 64, 96, 1), np.float32), np.zeros((2, 64, 96, 2), np.float32)])
    assert logits.shape == (2, 8, 12, 1)


def test_unet_config_rejects_an_unknown_head():
    with pytest.raises(ValueError, match="Received: head"):
        networks.UNetConfig(head="pixels")


def test_unet_config_rejects_a_wrong_number_of_widths():
    with pytest.raises(ValueError, match="Received: widths"):
        networks.UNetConfig(widths=(8, 16))
