#!/usr/bin/python3
"""Independent numpy reference of the samplers in src/diffusion (test data for scheduler_test.cc).

Written after diffusers' EulerDiscreteScheduler, EulerAncestralDiscreteScheduler and
DPMSolverMultistepScheduler (dpmsolver++, order 2, midpoint, lower_order_final, Karras sigmas,
final sigma zero), in their vectorised numpy style and with their dtypes where they matter: the
training betas, alphas and cumulative product in float32 (torch accumulates the product in double,
which np.cumprod over float64 then cast reproduces), timesteps and sigmas stored as float32.

Prints one JSON object (or writes it to --output): for every sampler and spacing at N steps the
timesteps, sigmas, init_noise_sigma and the base step count at --denoising-start, and whole
trajectories of a fixed 64-element start vector under the analytic model
eps = 0.1 * (x * input_scale_k) + 0.001 * t_k. euler_ancestral takes its noise from the arrays
in the JSON ("noise", one row per step). "trajectory" holds the state before step 0 (start times
init_noise_sigma) and after every step; "split_final" is the end state when the run is cut at the
base step count and the second stage starts with a fresh history (the refiner hand-off).

Run with Debian's /usr/bin/python3 (numpy). Needs nothing else.
"""
import argparse
import json
import sys

import numpy as np

VECTOR_SIZE = 64


def training_sigmas(beta_start, beta_end, beta_schedule, train_timesteps):
    if beta_schedule == "scaled_linear":
        betas = np.linspace(beta_start**0.5, beta_end**0.5, train_timesteps).astype(np.float32) ** 2
    elif beta_schedule == "linear":
        betas = np.linspace(beta_start, beta_end, train_timesteps).astype(np.float32)
    else:
        raise ValueError(beta_schedule)
    alphas = np.float32(1.0) - betas
    alphas_cumprod = np.cumprod(alphas.astype(np.float64)).astype(np.float32)
    return (((np.float32(1.0) - alphas_cumprod) / alphas_cumprod) ** 0.5).astype(np.float32)


def euler_schedule(train_sigmas, spacing, steps, steps_offset, train_timesteps):
    if spacing == "leading":
        ratio = train_timesteps // steps
        timesteps = (np.arange(0, steps) * ratio).round()[::-1].astype(np.float32) + steps_offset
    elif spacing == "trailing":
        ratio = train_timesteps / steps
        timesteps = np.arange(train_timesteps, 0, -ratio).round().astype(np.float32) - 1
    elif spacing == "linspace":
        timesteps = np.linspace(0, train_timesteps - 1, steps, dtype=np.float32)[::-1].copy()
    else:
        raise ValueError(spacing)
    assert len(timesteps) == steps
    sigmas = np.interp(timesteps, np.arange(0, len(train_sigmas)), train_sigmas)
    sigmas = np.concatenate([sigmas, [0.0]]).astype(np.float32)
    top = sigmas.max()
    if spacing in ("linspace", "trailing"):
        init = top
    else:
        init = (top**2 + 1) ** 0.5
    return timesteps.astype(np.float64), sigmas.astype(np.float64), float(init)


def sigma_to_t(sigma, log_sigmas):
    log_sigma = np.log(np.maximum(sigma, 1e-10))
    dists = log_sigma - log_sigmas[:, np.newaxis]
    low_idx = np.cumsum((dists >= 0), axis=0).argmax(axis=0).clip(max=log_sigmas.shape[0] - 2)
    high_idx = low_idx + 1
    low = log_sigmas[low_idx]
    high = log_sigmas[high_idx]
    w = np.clip((low - log_sigma) / (low - high), 0, 1)
    return ((1 - w) * low_idx + w * high_idx).reshape(np.shape(sigma))


def karras_schedule(train_sigmas, steps):
    log_sigmas = np.log(train_sigmas)
    descending = np.flip(train_sigmas).copy()
    sigma_min, sigma_max = descending[-1].item(), descending[0].item()
    rho = 7.0
    ramp = np.linspace(0, 1, steps)
    sigmas = (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    timesteps = np.array([sigma_to_t(s, log_sigmas) for s in sigmas]).round()
    sigmas = np.concatenate([sigmas, [0.0]]).astype(np.float32)
    return timesteps.astype(np.float64), sigmas.astype(np.float64), 1.0


def base_steps(timesteps, train_timesteps, denoising_start):
    cutoff = int(round(train_timesteps - denoising_start * train_timesteps))
    return int(np.sum(timesteps >= cutoff))


def model(x, scale, t):
    return 0.1 * (x * scale) + 0.001 * t


class Euler:
    def __init__(self, timesteps, sigmas, ancestral, noise):
        self.timesteps, self.sigmas, self.ancestral, self.noise = timesteps, sigmas, ancestral, noise

    def reset(self):
        pass

    def scale(self, k):
        return 1.0 / (self.sigmas[k] ** 2 + 1) ** 0.5

    def step(self, k, x, eps):
        sigma, sigma_next = self.sigmas[k], self.sigmas[k + 1]
        x0 = x - sigma * eps
        derivative = (x - x0) / sigma
        if not self.ancestral:
            return x + derivative * (sigma_next - sigma)
        sigma_up = (sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2) ** 0.5
        sigma_down = (sigma_next**2 - sigma_up**2) ** 0.5
        return x + derivative * (sigma_down - sigma) + self.noise[k] * sigma_up


class DpmSolver2m:
    def __init__(self, timesteps, sigmas):
        self.timesteps, self.sigmas = timesteps, sigmas
        self.reset()

    def reset(self):
        self.outputs = []

    def scale(self, k):
        return 1.0

    @staticmethod
    def alpha_sigma(sigma):
        alpha = 1 / (sigma**2 + 1) ** 0.5
        return alpha, sigma * alpha

    def step(self, k, x, eps):
        alpha_s0, sigma_s0 = self.alpha_sigma(self.sigmas[k])
        self.outputs.append((x - sigma_s0 * eps) / alpha_s0)
        alpha_t, sigma_t = self.alpha_sigma(self.sigmas[k + 1])
        with np.errstate(divide="ignore"):
            lambda_t = np.log(alpha_t) - np.log(sigma_t)
        lambda_s0 = np.log(alpha_s0) - np.log(sigma_s0)
        h = lambda_t - lambda_s0
        last = k == len(self.timesteps) - 1
        m0 = self.outputs[-1]
        if len(self.outputs) < 2 or last:
            return (sigma_t / sigma_s0) * x - (alpha_t * (np.exp(-h) - 1.0)) * m0
        alpha_s1, sigma_s1 = self.alpha_sigma(self.sigmas[k - 1])
        lambda_s1 = np.log(alpha_s1) - np.log(sigma_s1)
        r0 = (lambda_s0 - lambda_s1) / h
        d1 = (1.0 / r0) * (m0 - self.outputs[-2])
        return ((sigma_t / sigma_s0) * x - (alpha_t * (np.exp(-h) - 1.0)) * m0
                - 0.5 * (alpha_t * (np.exp(-h) - 1.0)) * d1)


def run(sampler, timesteps, start, init, begin_end_pairs):
    x = start * init
    states = [x.copy()]
    for begin, end in begin_end_pairs:
        sampler.reset()
        for k in range(begin, end):
            eps = model(x, sampler.scale(k), timesteps[k])
            x = sampler.step(k, x, eps)
            states.append(x.copy())
    return states


def case(sampler_name, spacing, args, train_sigmas, start, rng):
    if sampler_name == "dpmpp_2m_karras":
        timesteps, sigmas, init = karras_schedule(train_sigmas, args.steps)
    else:
        timesteps, sigmas, init = euler_schedule(train_sigmas, spacing, args.steps, 1, 1000)
    count = base_steps(timesteps, 1000, args.denoising_start)
    noise = rng.standard_normal((args.steps, VECTOR_SIZE)).astype(np.float32).astype(np.float64)

    def make():
        if sampler_name == "dpmpp_2m_karras":
            return DpmSolver2m(timesteps, sigmas)
        return Euler(timesteps, sigmas, sampler_name == "euler_ancestral", noise)

    trajectory = run(make(), timesteps, start, init, [(0, args.steps)])
    split = run(make(), timesteps, start, init, [(0, count), (count, args.steps)])
    result = {
        "sampler": sampler_name,
        "spacing": spacing,
        "timesteps": timesteps.tolist(),
        "sigmas": sigmas.tolist(),
        "init_noise_sigma": init,
        "base_steps": count,
        "trajectory": [state.tolist() for state in trajectory],
        "split_final": split[-1].tolist(),
    }
    if sampler_name == "euler_ancestral":
        result["noise"] = noise.tolist()
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--denoising-start", type=float, default=0.8)
    parser.add_argument("--output", help="write the JSON here instead of stdout")
    args = parser.parse_args()

    train_sigmas = training_sigmas(0.00085, 0.012, "scaled_linear", 1000)
    rng = np.random.default_rng(20261205)
    start = rng.standard_normal(VECTOR_SIZE).astype(np.float32).astype(np.float64)
    cases = []
    for sampler_name in ("euler", "euler_ancestral"):
        for spacing in ("leading", "trailing", "linspace"):
            cases.append(case(sampler_name, spacing, args, train_sigmas, start, rng))
    cases.append(case("dpmpp_2m_karras", "leading", args, train_sigmas, start, rng))
    document = {
        "steps": args.steps,
        "denoising_start": args.denoising_start,
        "model": "eps = 0.1 * x * input_scale + 0.001 * t",
        "start": start.tolist(),
        "cases": cases,
    }
    text = json.dumps(document)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
