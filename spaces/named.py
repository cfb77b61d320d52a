"""Published networks stated in the genotype language (torchvision's definitions, width 1.0)."""
from __future__ import annotations

from .genotype import Genotype, parse

MOBILENET_V2 = parse(
    "stem_c32_k3_s2_relu6, ir_r1_k3_s1_e1_c16_relu6, ir_r2_k3_s2_e6_c24_relu6, "
    "ir_r3_k3_s2_e6_c32_relu6, ir_r4_k3_s2_e6_c64_relu6, ir_r3_k3_s1_e6_c96_relu6, "
    "ir_r3_k3_s2_e6_c160_relu6, ir_r1_k3_s1_e6_c320_relu6, head_c1280_relu6_d0.2")

MOBILENET_V3_LARGE = parse(
    "stem_c16_k3_s2_hswish, ir_r1_k3_s1_e1_c16_relu, ir_r1_k3_s2_e4_c24_relu, "
    "ir_r1_k3_s1_e3_c24_relu, ir_r3_k5_s2_e3_c40_se0.25_relu, ir_r1_k3_s2_e6_c80_hswish, "
    "ir_r1_k3_s1_e2.5_c80_hswish, ir_r2_k3_s1_e2.3_c80_hswish, ir_r2_k3_s1_e6_c112_se0.25_hswish, "
    "ir_r3_k5_s2_e6_c160_se0.25_hswish, head_c960_f1280_hswish_d0.2")

NAMED: dict[str, Genotype] = {
    "mobilenet_v2": MOBILENET_V2,
    "mobilenet_v3_large": MOBILENET_V3_LARGE,
}
