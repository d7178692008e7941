"""The names of ComfyUI's samplers and schedulers, for node packs run without a checkout.

Packs offer them as combo inputs (``comfy.samplers.KSampler.SAMPLERS``); sampling itself
needs ComfyUI's models and k-diffusion code, so the functions that would run it say to
pass ``--comfyui DIR``.
"""
from __future__ import annotations

from typing import Any, List

KSAMPLER_NAMES: List[str] = [
    "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2", "exp_heun_2_x0",
    "exp_heun_2_x0_sde", "dpm_2", "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral",
    "dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde",
    "dpmpp_2m_sde_gpu", "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm",
    "lcm", "ipndm", "ipndm_v", "deis", "res_multistep", "res_multistep_cfg_pp", "res_multistep_ancestral",
    "res_multistep_ancestral_cfg_pp", "gradient_estimation", "gradient_estimation_cfg_pp", "er_sde", "seeds_2",
    "seeds_3", "sa_solver", "sa_solver_pece",
]
"""k-diffusion samplers, in ComfyUI 0.8.0's order."""

SAMPLER_NAMES: List[str] = KSAMPLER_NAMES + ["ddim", "uni_pc", "uni_pc_bh2"]

SCHEDULER_NAMES: List[str] = [
    "simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal", "linear_quadratic", "kl_optimal",
]


def _needs_comfyui(what: str) -> NotImplementedError:
    return NotImplementedError(
        f"comfy.samplers.{what} runs ComfyUI's sampling code, which pyisolate's shims do not provide; run with a "
        "ComfyUI checkout (--comfyui DIR or PYISOLATE_COMFYUI).")


class KSampler:
    """``KSampler.SAMPLERS`` / ``SCHEDULERS``: the combo lists. Sampling needs a ComfyUI checkout."""

    SCHEDULERS = SCHEDULER_NAMES
    SAMPLERS = SAMPLER_NAMES
    DISCARD_PENULTIMATE_SIGMA_SAMPLERS = {"dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise _needs_comfyui("KSampler")


def sampler_object(name: str) -> Any:
    raise _needs_comfyui("sampler_object")


def ksampler(sampler_name: str, extra_options: Any = None, inpaint_options: Any = None) -> Any:
    raise _needs_comfyui("ksampler")


def calculate_sigmas(model_sampling: Any, scheduler_name: str, steps: int) -> Any:
    raise _needs_comfyui("calculate_sigmas")
