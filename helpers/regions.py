"""Activation regions of small ReLU networks: exact enumeration and counting.

A ReLU network is affine on each set of inputs where every hidden unit keeps
one on/off state (an *activation region*, chapter 3). For one or two inputs
:func:`enumerate_regions` finds these regions exactly by clipping polygons;
:func:`count_activation_regions` counts them, exactly or on a grid. Adjacent
activation regions may carry the same affine map; :func:`linear_regions` merges
them into the *linear regions* (maximal connected sets on which the network is
affine). Networks are read by :func:`helpers.relu_tropical.mlp_layers`
(``Linear`` and ``ReLU``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

from helpers._arrays import ArrayLike
from helpers.relu_tropical import forward_with_patterns, mlp_layers

__all__ = [
    "Region",
    "activation_patterns",
    "count_activation_regions",
    "count_linear_regions",
    "enumerate_regions",
    "linear_regions",
]


def activation_patterns(net: nn.Module, X: ArrayLike) -> np.ndarray:
    """Boolean ReLU on/off pattern of every hidden unit at every point, (N, units)."""
    return forward_with_patterns(mlp_layers(net), X, "X")[1]


@dataclass
class Region:
    """One activation region: its polygon (or interval), pattern and affine map."""

    vertices: np.ndarray  #: (k, d) corners in counterclockwise order (d = 2) or ends
    pattern: np.ndarray  #: (units,) bool, ReLU on/off for every hidden unit
    weight: np.ndarray  #: (m, d) the network is ``weight @ x + bias`` on the region
    bias: np.ndarray  #: (m,)

    @property
    def size(self) -> float:
        """Area (d = 2) or length (d = 1) of the region."""
        V = self.vertices
        if V.shape[1] == 1:
            return float(V[:, 0].max() - V[:, 0].min())
        x, y = V[:, 0], V[:, 1]
        return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _clip(poly: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Part of a convex polygon (ccw corners) where the affine values ``s >= 0``."""
    out = []
    k = len(poly)
    for i in range(k):
        j = (i + 1) % k
        if s[i] >= 0:
            out.append(poly[i])
        if (s[i] > 0 and s[j] < 0) or (s[i] < 0 and s[j] > 0):
            t = s[i] / (s[i] - s[j])
            out.append(poly[i] + t * (poly[j] - poly[i]))
    return np.array(out).reshape(-1, poly.shape[1])


def _split(
    cell: np.ndarray, a: np.ndarray, a0: float, min_size: float
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Split a cell (interval or polygon) by the sign of ``a . x + a0``."""
    s = cell @ a + a0
    eps = 1e-12 * (np.abs(cell).max() * np.abs(a).sum() + abs(a0) + 1e-300)
    if np.all(s >= -eps):
        return cell, None
    if np.all(s <= eps):
        return None, cell
    if cell.shape[1] == 1:
        root = -a0 / a[0]
        lo, hi = cell[:, 0].min(), cell[:, 0].max()
        pos = np.array([[root], [hi]]) if a[0] > 0 else np.array([[lo], [root]])
        neg = np.array([[lo], [root]]) if a[0] > 0 else np.array([[root], [hi]])
    else:
        pos, neg = _clip(cell, s), _clip(cell, -s)
    keep = []
    for part in (pos, neg):
        size = Region(part, np.zeros(0, bool), np.zeros((0, 1)), np.zeros(0)).size
        keep.append(part if len(part) >= cell.shape[1] and size > min_size else None)
    return keep[0], keep[1]


def enumerate_regions(
    net: nn.Module, lo: float = -1.0, hi: float = 1.0
) -> list[Region]:
    """Exact activation regions of a 1- or 2-input ReLU network inside ``[lo, hi]^d``.

    Starting from the box, every hidden unit's pre-activation (affine on the
    current cell) splits each cell by exact polygon clipping; the network is
    affine on every final cell. Cells whose area (length for one input) is
    below ``1e-12`` of the box's are dropped as rounding slivers. Regions are
    convex; adjacent ones may share an affine map, so the number of linear
    pieces is at most the number of regions.
    """
    layers = mlp_layers(net)
    d = layers[0][0].shape[1]
    if d not in (1, 2):
        raise ValueError(f"exact region enumeration needs 1 or 2 inputs, got {d}")
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"need finite lo < hi, got {lo}, {hi}")
    box = (
        np.array([[lo], [hi]])
        if d == 1
        else np.array([[lo, lo], [hi, lo], [hi, hi], [lo, hi]], dtype=float)
    )
    min_size = 1e-12 * (hi - lo) ** d
    cells = [(box, np.zeros(0, dtype=bool), np.eye(d), np.zeros(d))]
    for W, b, relu in layers:
        new_cells = []
        for poly, pat, M, m in cells:
            A, a = W @ M, W @ m + b
            if not relu:
                new_cells.append((poly, pat, A, a))
                continue
            pieces = [(poly, [])]
            for j in range(W.shape[0]):
                nxt = []
                for part, bits in pieces:
                    pos, neg = _split(part, A[j], a[j], min_size)
                    if pos is not None:
                        nxt.append((pos, bits + [True]))
                    if neg is not None:
                        nxt.append((neg, bits + [False]))
                pieces = nxt
            for part, bits in pieces:
                on = np.array(bits, dtype=bool)
                new_cells.append(
                    (part, np.concatenate([pat, on]), A * on[:, None], a * on)
                )
        cells = new_cells
    return [Region(p, pat, M, m) for p, pat, M, m in cells]


def count_activation_regions(
    net: nn.Module,
    lo: float = -1.0,
    hi: float = 1.0,
    method: str = "exact",
    resolution: int = 400,
) -> int:
    """Number of activation regions of the network inside the box ``[lo, hi]^d``.

    ``method="exact"`` enumerates them (d <= 2); ``method="grid"`` counts the
    distinct activation patterns on a ``resolution^d`` grid (any small ``d``),
    a lower bound that misses regions thinner than the grid spacing. The
    number of linear regions is at most this count (:func:`linear_regions`).
    """
    if method == "exact":
        return len(enumerate_regions(net, lo, hi))
    if method != "grid":
        raise ValueError(f"method must be 'exact' or 'grid', got {method!r}")
    d = mlp_layers(net)[0][0].shape[1]
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)):
        raise TypeError(f"resolution must be an int, got {type(resolution).__name__}")
    if resolution < 2 or resolution**d > 5_000_000:
        raise ValueError(
            f"resolution {resolution} in {d} dimensions gives more than 5,000,000 "
            "grid points (or fewer than 2 per side)"
        )
    axes = [np.linspace(lo, hi, resolution)] * d
    X = np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")], axis=1)
    pats = activation_patterns(net, X)
    if pats.shape[1] == 0:
        return 1
    packed = np.ascontiguousarray(np.packbits(pats, axis=1))
    keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    return int(len(np.unique(keys)))


def count_linear_regions(
    net: nn.Module,
    lo: float = -1.0,
    hi: float = 1.0,
    method: str = "exact",
    resolution: int = 400,
) -> int:
    """Alias of :func:`count_activation_regions`, kept for existing code.

    Despite the name it counts *activation* regions, an upper bound on the
    linear regions; ``len(linear_regions(net, lo, hi))`` counts the latter.
    """
    return count_activation_regions(net, lo, hi, method, resolution)


def _same_map(r: Region, s: Region, tol: float) -> bool:
    """True when two regions carry the same affine map (up to ``tol``)."""
    a = np.r_[r.weight.ravel(), r.bias.ravel()]
    b = np.r_[s.weight.ravel(), s.bias.ravel()]
    return bool(np.abs(a - b).max() <= tol * (1.0 + np.abs(a).max()))


def linear_regions(
    net: nn.Module, lo: float = -1.0, hi: float = 1.0, tol: float = 1e-9
) -> list[list[Region]]:
    """Linear regions of a 1- or 2-input network inside ``[lo, hi]^d``.

    A linear region is a maximal connected set on which the network is affine.
    The activation regions of :func:`enumerate_regions` are grouped: two that
    share a boundary piece of positive length (d = 2) or an end point (d = 1)
    and carry the same affine map (up to ``tol``, relative) join one group.
    Each group is one linear region of the network restricted to the box, so
    ``len(linear_regions(...)) <= count_activation_regions(...)``.

    Neighbours are found by stepping from the midpoint of each polygon edge a
    distance ``1e-7 (hi - lo)`` outwards and reading the activation pattern
    there; a neighbour thinner than that step can be missed, which can only
    split a group, never merge two.
    """
    regions = enumerate_regions(net, lo, hi)
    parent = list(range(len(regions)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    lookup = {r.pattern.tobytes(): k for k, r in enumerate(regions)}
    step = 1e-7 * (hi - lo)
    probes, owners = [], []
    for k, r in enumerate(regions):
        V = r.vertices
        if V.shape[1] == 1:
            probes += [[V[:, 0].min() - step], [V[:, 0].max() + step]]
            owners += [k, k]
            continue
        nxt = np.roll(V, -1, axis=0)
        edge = nxt - V
        turn = np.sign(np.sum(V[:, 0] * nxt[:, 1] - V[:, 1] * nxt[:, 0])) or 1.0
        length = np.linalg.norm(edge, axis=1)
        ok = length > 0
        normal = turn * np.c_[edge[:, 1], -edge[:, 0]][ok] / length[ok, None]
        probes += list((V[ok] + nxt[ok]) / 2 + step * normal)
        owners += [k] * int(ok.sum())
    if probes:
        points = np.asarray(probes, dtype=float)
        inside = np.all((points >= lo) & (points <= hi), axis=1)
        pats = activation_patterns(net, points[inside])
        for k, pat in zip(np.asarray(owners)[inside], pats):
            j = lookup.get(pat.tobytes())
            if j is not None and j != k and _same_map(regions[k], regions[j], tol):
                parent[find(int(k))] = find(j)
    groups: dict[int, list[Region]] = {}
    for k, r in enumerate(regions):
        groups.setdefault(find(k), []).append(r)
    return list(groups.values())
