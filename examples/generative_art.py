"""Generative art: a continuous policy over style parameters that renders images (PNG) rated by
feedback, learning a preferred style, with every optimizer step gated and signed.

The policy is a Gaussian over 6 raw style numbers with a learned mean and log-std; a sigmoid
squashes a sample into [0, 1]: hue, saturation, stripe frequency, stripe angle, contrast and
blob count, in that order. numpy renders each style as a 64x64 RGB image (stripes over a
colour field, with soft blobs). Before anyone sees an image, a photosensitivity screen
measures its pixels and blocks high-contrast, high-frequency stripes (fail closed: a blocked
image is never shown, never rated, never saved, and trains with the policy's
`safety.blocked_penalty`). Simulated viewers, each with a slightly different taste, rate the
shown images from their pixels: they like warm colours, some busy-ness (edge density in a
band) and medium contrast. REINFORCE with a mean baseline learns the population's taste.

Every optimizer step goes through the gate into the run's signed audit log, each with the
step's screen counts; the drift probe is the policy discretised on a grid.
The gallery keeps screened images of the first, some middle and the last steps as PNG files
(written with zlib, no imaging library), and the median style before and after.

    python examples/generative_art.py [--steps 150] [--seed 0] [--run-dir DIR]
        (writes runs/torch-<time>/, its gallery in RUN_DIR/gallery/)
"""

from __future__ import annotations

import argparse
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from guarded_rl import GatePolicy, GuardedLoop, GuardPolicy

STYLE = ("hue", "saturation", "frequency", "angle", "contrast", "blobs")
START = (0.50, 0.45, 0.55, 0.30, 0.60, 0.30)  # a green, busy, contrasty start in [0, 1]
SIZE, BATCH, GRID = 64, 32, 64
MAX_BLOBS = 6
# photosensitivity (a toy rule in the spirit of broadcast pattern guidelines): block more
# than MAX_PAIRS light-dark stripe pairs across the image that swing over +-SWING luminance
MAX_PAIRS, SWING = 6.0, 0.22


class StylePolicy(nn.Module):
    """A diagonal Gaussian over raw style numbers; `sigmoid(raw)` is the style in [0, 1]."""

    def __init__(self, start: tuple[float, ...], std: float = 0.8) -> None:
        super().__init__()
        self.mean = nn.Parameter(torch.logit(torch.tensor(start)))
        self.log_std = nn.Parameter(torch.full((len(start),), float(np.log(std))))

    def forward(self) -> torch.distributions.Normal:
        """The distribution of raw styles (no input: one policy for everyone)."""
        return torch.distributions.Normal(self.mean, self.log_std.exp())


# The drift probe: the library compares log_softmax(probe(model)) before and after a step
# (KL over the last dim, averaged over rows). A continuous policy has no logits, so the probe
# gives, for each style dimension, the log-density of the squashed style at GRID fixed points
# u in (0, 1): log N(logit(u); mean, std) - log(u (1 - u)). Normalised over the grid this is
# the policy discretised into GRID equal bins per dimension, so the KL is the step's change
# of the style distribution, dimension by dimension.
GRID_U = (torch.arange(GRID, dtype=torch.float32) + 0.5) / GRID
GRID_RAW = torch.logit(GRID_U)
GRID_JACOBIAN = -torch.log(GRID_U * (1 - GRID_U))


def probe(model: nn.Module) -> torch.Tensor:
    """Logits [6, GRID]: each style dimension's log-density on the fixed grid."""
    dist = model()
    marginal = torch.distributions.Normal(dist.loc[:, None], dist.scale[:, None])
    return marginal.log_prob(GRID_RAW[None, :]) + GRID_JACOBIAN


# -- rendering ------------------------------------------------------------------------------

_YY, _XX = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64) / SIZE
_BLOB_XY = np.random.default_rng(7).uniform(0.15, 0.85, size=(MAX_BLOBS, 2))  # fixed places
_BLOB_R = np.random.default_rng(8).uniform(0.08, 0.16, size=MAX_BLOBS)


def hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """HSV arrays in [0, 1] to an RGB array [..., 3] in [0, 1]."""
    k = (np.stack([5.0, 3.0, 1.0], -1) + h[..., None] * 6.0) % 6.0
    return v[..., None] - v[..., None] * s[..., None] * np.clip(np.minimum(k, 4.0 - k), 0, 1)


def render(style: np.ndarray) -> np.ndarray:
    """One style in [0, 1]^6 as an RGB image [SIZE, SIZE, 3] of uint8."""
    hue, sat, freq, angle, contrast, blobs = (float(x) for x in style)
    cycles, theta = 1.0 + 15.0 * freq, np.pi / 2 * angle  # vertical to horizontal stripes
    wave = np.sin(2 * np.pi * cycles * (_XX * np.cos(theta) + _YY * np.sin(theta)))
    h = (0.8 * hue + 0.04 * wave) % 1.0  # red to magenta: the hue range does not wrap around
    s = np.full_like(wave, 0.1 + 0.9 * sat)
    v = 0.55 + 0.45 * contrast * wave
    for i in range(MAX_BLOBS):  # blob i fades in as `blobs` passes i / MAX_BLOBS
        alpha = np.clip(blobs * MAX_BLOBS - i, 0.0, 1.0)
        if alpha <= 0:
            break
        dist = np.hypot(_XX - _BLOB_XY[i, 0], _YY - _BLOB_XY[i, 1])
        mask = alpha * np.clip((_BLOB_R[i] - dist) * SIZE / 2, 0.0, 1.0)  # soft edge
        h = (h + mask * (0.07 + 0.02 * i)) % 1.0
        v = v * (1 - mask) + mask * (0.35 + 0.1 * (i % 3))
    return np.round(hsv_to_rgb(h, s, v) * 255).astype(np.uint8)


def luminance(image: np.ndarray) -> np.ndarray:
    """Relative luminance in [0, 1] (Rec. 709 weights, on the 8-bit values as they are)."""
    return image.astype(np.float64) @ np.array([0.2126, 0.7152, 0.0722]) / 255.0


# -- the photosensitivity screen (before anyone sees an image) ------------------------------


def stripe_pairs(image: np.ndarray) -> float:
    """Light-dark pairs of large amplitude across the image: reversals across a line's mean
    +- SWING (with hysteresis), halved, averaged over the rows and over the columns; stripes
    at an angle cross both, so the two combine like the sides of a right triangle."""
    lum = luminance(image)
    lines = np.concatenate([lum, lum.T])  # rows, then columns
    mean = lines.mean(1)
    state = np.zeros(len(lines))
    flips = np.zeros(len(lines))
    for column in lines.T:
        new = np.where(column > mean + SWING, 1.0, np.where(column < mean - SWING, -1.0, state))
        flips += (new != state) & (state != 0)
        state = new
    pairs = (flips + 1) / 2 * (flips > 0)
    return float(np.hypot(pairs[:SIZE].mean(), pairs[SIZE:].mean()))


def photosensitive(image: np.ndarray) -> bool:
    """Block: high-contrast stripes at high spatial frequency (a seizure risk)."""
    return stripe_pairs(image) > MAX_PAIRS


# -- simulated viewers (rate pixels, never the parameters) ----------------------------------


@dataclass(frozen=True)
class Features:
    """What viewers react to, measured on the pixels."""

    warmth: float  # chroma towards orange minus away from it, per brightness, in [-1, 1]
    busy: float  # share of neighbouring pixels with a visible luminance edge
    contrast: float  # standard deviation of the luminance


def features(image: np.ndarray) -> Features:
    """Warmth (from each pixel's hue and chroma), busy-ness and contrast of an image."""
    rgb = image.astype(np.float64) / 255.0
    mx, mn = rgb.max(-1), rgb.min(-1)
    chroma = mx - mn
    safe = np.where(chroma > 0, chroma, 1.0)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    hue = np.where(
        mx == r, ((g - b) / safe) % 6, np.where(mx == g, (b - r) / safe + 2, (r - g) / safe + 4)
    )
    angle = hue / 6 * 2 * np.pi
    orange = 2 * np.pi * 0.08
    warmth = float((chroma * np.cos(angle - orange)).mean() / max(mx.mean(), 1e-6))
    lum = luminance(image)
    edges = [(np.abs(np.diff(lum, axis=a)) > 0.06).mean() for a in (0, 1)]  # steps >= 0.06
    return Features(warmth, float(np.mean(edges)), float(lum.std()))


class Viewers:
    """A seeded population; each viewer likes warmth, busy-ness in a band and a contrast, to
    slightly different degrees. Each image is rated by one viewer drawn at random."""

    def __init__(self, rng: np.random.Generator, n: int = 24) -> None:
        self.busy = rng.normal(0.30, 0.05, n)
        self.contrast = rng.normal(0.16, 0.03, n)
        self.warm_weight = rng.normal(3.0, 0.5, n)

    def like_probability(self, image: np.ndarray, viewer: int) -> float:
        """A smooth score of the image's pixel features, through a logistic."""
        f = features(image)
        score = (
            self.warm_weight[viewer] * f.warmth
            + 2.0 * np.exp(-(((f.busy - self.busy[viewer]) / 0.12) ** 2))
            + 2.0 * np.exp(-(((f.contrast - self.contrast[viewer]) / 0.07) ** 2))
        )
        return float(1 / (1 + np.exp(-2.0 * (score - 3.0))))

    def rate(self, image: np.ndarray, rng: np.random.Generator) -> float:
        """1.0 (like) or 0.0 from a random viewer."""
        viewer = int(rng.integers(len(self.busy)))
        return float(rng.random() < self.like_probability(image, viewer))


# -- PNG without Pillow ---------------------------------------------------------------------


def write_png(path: Path, image: np.ndarray) -> None:
    """An 8-bit RGB PNG: signature, IHDR, one zlib IDAT (filter 0 per row), IEND."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    height, width, _ = image.shape
    raw = b"".join(b"\x00" + row.tobytes() for row in np.ascontiguousarray(image, np.uint8))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


# -- the guarded loop -----------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", default=None, help="New or empty (default runs/torch-*).")
    args = parser.parse_args()

    started = time.perf_counter()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    viewers = Viewers(np.random.default_rng([args.seed, 1]))
    model = StylePolicy(START)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    # A 12-number policy moves fast: an Adam step changes its weights by ~1% and up to ~12%
    # early on, over the default bound of 5% (so: 0.5, as in minimal_loop.py); its grid KL
    # stays near 0.001-0.005, under the default 0.01 (0.05 leaves room for other seeds and
    # learning rates). A jump (KL >= reject_step_kl, 0.5) is still rejected.
    gate = GatePolicy(max_param_change=0.5, max_step_kl=0.05)
    policy = GuardPolicy(gate=gate)
    guard = GuardedLoop(model, optimizer, probe=probe, policy=policy, run_dir=args.run_dir)
    gallery = guard.run_dir / "gallery"  # `audit verify` ignores files it does not know
    gallery.mkdir()
    penalty = policy.safety.blocked_penalty

    def like_rate(n: int = 512) -> float:
        """Like-rate of fresh samples (the same noise and viewers each time; blocked images
        count as not liked)."""
        eval_rng = np.random.default_rng([args.seed, 2])
        noise = torch.randn(n, len(STYLE), generator=torch.Generator().manual_seed(args.seed + 1))
        with torch.no_grad():
            styles = torch.sigmoid(model.mean + model.log_std.exp() * noise).numpy()
        liked = 0.0
        for style in styles:
            image = render(style)
            liked += 0.0 if photosensitive(image) else viewers.rate(image, eval_rng)
        return liked / n

    def mean_style() -> np.ndarray:
        with torch.no_grad():
            return torch.sigmoid(model.mean).numpy().copy()

    before, style_before = like_rate(), mean_style()
    keep = {args.steps - 1, *range(0, args.steps, max(1, args.steps // 4))}
    outcomes = {"approved": 0, "pending": 0, "rejected": 0}
    blocked = shown = 0
    for step in range(args.steps):
        dist = model()
        raw = dist.sample((BATCH,))
        rewards = torch.empty(BATCH)
        tally = {"photosensitive_blocked": 0, "shown": 0}  # this step's screen counts
        for i, style in enumerate(torch.sigmoid(raw).numpy()):
            image = render(style)
            if photosensitive(image):  # fail closed: never shown, rated or saved
                tally["photosensitive_blocked"] += 1
                rewards[i] = penalty
                continue
            rewards[i] = viewers.rate(image, rng)
            if step in keep and tally["shown"] < 4:
                write_png(gallery / f"step{step:04d}-{tally['shown']}.png", image)
            tally["shown"] += 1
        blocked, shown = blocked + tally["photosensitive_blocked"], shown + tally["shown"]
        # REINFORCE: log-density of the sampled raw styles, weighted by the advantage; the
        # reward (from pixels and viewers) is never differentiated
        loss = -(dist.log_prob(raw).sum(-1) * (rewards - rewards.mean())).mean()
        optimizer.zero_grad()
        loss.backward()
        # was optimizer.step(); the screen's counts go into the step's signed audit entry
        decision = guard.step(rewards=rewards.tolist(), screened=tally)
        outcomes[decision.outcome] += 1
    guard.close()
    after, style_after = like_rate(), mean_style()
    for name, style in (("before", style_before), ("after", style_after)):
        image = render(style)
        if not photosensitive(image):
            write_png(gallery / f"mean-style-{name}.png", image)

    def show(style: np.ndarray) -> str:
        return "[" + ", ".join(f"{x:.2f}" for x in style) + "]"

    print(f"like-rate before {before:.3f} after {after:.3f}")
    print(f"mean style before {show(style_before)} after {show(style_after)}")
    print(f"  ({', '.join(STYLE)}: the policy's median style, sigmoid of its mean)")
    print(f"blocked {blocked} of {blocked + shown} images (photosensitivity)")
    print(
        f"steps approved {outcomes['approved']} pending {outcomes['pending']} "
        f"rejected {outcomes['rejected']}"
    )
    print(f"wall time {time.perf_counter() - started:.1f} s")
    print(f"gallery: {gallery}")
    print(f"run directory: {guard.run_dir}")


if __name__ == "__main__":
    main()
