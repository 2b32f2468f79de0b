"""The ODE solvers: hand-computed steps, convergence orders, and ab2 against Heun-50.

Fields with known solutions:

- ``v = z`` (so z(1) = e * z(0)): one Euler step multiplies by (1 + h), one Heun step by
  (1 + h + h^2 / 2).
- the exact flow of Gaussian data: data x ~ N(mu, sigma^2) per dim, noise eps ~ N(0, 1); the marginal
  at t is N(t mu, s_t^2) with s_t^2 = t^2 sigma^2 + (1 - t)^2, the velocity is
  v(z, t) = mu + (t sigma^2 - (1 - t)) / s_t^2 * (z - t mu), and z(1) = mu + sigma * z(0).
- a mixture of two Gaussians (a nonlinear field, solved on a fine grid with RK4).
"""

from __future__ import annotations

import math

import pytest
import torch

import gen
from gen_flow.guidance import guided_velocity
from gen_flow.solvers import ab2, dpmpp_2m, dpmpp_3m, euler, heun

F64 = torch.float64


def grid(n: int) -> torch.Tensor:
    return torch.arange(n + 1, dtype=F64) / n


class Counted:
    """A velocity field that counts its evaluations and records the times it was evaluated at."""

    def __init__(self, fn):
        self.fn, self.calls, self.times = fn, 0, []

    def __call__(self, z, t):
        self.calls += 1
        self.times.append(float(t))
        return self.fn(z, t)


def gaussian_field(mu: torch.Tensor, sigma: torch.Tensor):
    def v(z, t):
        t = float(t)
        var = t * t * sigma**2 + (1 - t) ** 2
        return mu + (t * sigma**2 - (1 - t)) / var * (z - t * mu)

    return v


def mixture_field(m: torch.Tensor, sigma: float):
    """Exact velocity of data = +-m (each with prob 1/2) plus N(0, sigma^2), noise N(0, 1)."""

    def v(z, t):
        t = min(float(t), 1 - 1e-12)
        var = t * t * sigma**2 + (1 - t) ** 2
        w = torch.sigmoid((-((z - t * m) ** 2) + (z + t * m) ** 2) / (2 * var))  # P(+m | z)
        gain = t * sigma**2 / var
        x_hat = w * (m + gain * (z - t * m)) + (1 - w) * (-m + gain * (z + t * m))
        return (x_hat - z) / (1 - t)

    return v


def rk4(v, z, ts):
    for i in range(len(ts) - 1):
        t, h = float(ts[i]), float(ts[i + 1] - ts[i])
        k1 = v(z, t)
        k2 = v(z + h / 2 * k1, t + h / 2)
        k3 = v(z + h / 2 * k2, t + h / 2)
        k4 = v(z + h * k3, t + h)
        z = z + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return z


def test_registered():
    for name, fn in [("euler", euler), ("heun", heun), ("ab2", ab2)]:
        assert gen.build("sampler", name) is fn


def test_euler_by_hand():
    z0 = torch.tensor([[1.0, -2.0]], dtype=F64)
    v = Counted(lambda z, t: z)
    z1 = euler(v, z0, grid(4))
    torch.testing.assert_close(z1, z0 * 1.25**4, rtol=0, atol=1e-14)
    assert v.calls == 4 and v.times == [0.0, 0.25, 0.5, 0.75]
    # A time-dependent field: v = t, exact z(1) = z0 + 1/2; Euler sums h * t_i = (0 + 1/4 + 1/2 + 3/4) / 4.
    z1 = euler(lambda z, t: torch.full_like(z, float(t)), z0, grid(4))
    torch.testing.assert_close(z1, z0 + 1.5 / 4, rtol=0, atol=1e-14)


def test_heun_by_hand():
    z0 = torch.tensor([[1.0, -2.0]], dtype=F64)
    v = Counted(lambda z, t: z)
    z1 = heun(v, z0, grid(4))
    h = 0.25
    # Three Heun steps, then the last step by Euler (published JiT): never evaluated at t = 1.
    torch.testing.assert_close(z1, z0 * (1 + h + h * h / 2) ** 3 * (1 + h), rtol=0, atol=1e-14)
    assert v.calls == 2 * 4 - 1 and max(v.times) == 0.75
    # v = t: the trapezoid is exact on each Heun interval; the Euler step takes h * 3/4.
    z1 = heun(lambda z, t: torch.full_like(z, float(t)), z0, grid(4))
    torch.testing.assert_close(z1, z0 + (0.75**2 / 2 + 0.25 * 0.75), rtol=0, atol=1e-14)


def test_ab2_by_hand():
    z0 = torch.tensor([[1.0]], dtype=F64)
    v = Counted(lambda z, t: z)
    z1 = ab2(v, z0, grid(3))
    h = 1 / 3
    z = z0 * (1 + h + h * h / 2)  # Heun start
    v_prev, v_cur = z0, z
    z = z + h * (1.5 * v_cur - 0.5 * v_prev)
    v_prev, v_cur = v_cur, z
    z = z + h * (1.5 * v_cur - 0.5 * v_prev)
    torch.testing.assert_close(z1, z, rtol=0, atol=1e-14)
    assert v.calls == 3 + 1 and max(v.times) == pytest.approx(2 / 3)
    # Variable steps: exact for a velocity linear in t (v = t, z(1) = z0 + 1/2) on any grid.
    ts = torch.tensor([0.0, 0.1, 0.35, 0.5, 0.8, 1.0], dtype=F64)
    z1 = ab2(lambda z, t: torch.full_like(z, float(t)), z0, ts)
    torch.testing.assert_close(z1, z0 + 0.5, rtol=0, atol=1e-14)


@pytest.mark.parametrize("solver", [euler, heun, ab2])
def test_single_step_and_empty_grid(solver):
    z0 = torch.tensor([[2.0]], dtype=F64)
    assert solver(lambda z, t: z, z0, torch.tensor([0.0, 1.0], dtype=F64)).item() == 4.0
    assert solver(lambda z, t: z, z0, torch.tensor([0.0], dtype=F64)).item() == 2.0


def _order(solver, v, z0, exact, steps):
    errors = [(solver(v, z0, grid(n)) - exact).abs().max().item() for n in steps]
    return [math.log2(a / b) for a, b in zip(errors[:-1], errors[1:], strict=True)], errors


def test_convergence_orders():
    mu = torch.tensor([0.5, -0.3, 0.8], dtype=F64)
    sigma = torch.tensor([0.3, 0.5, 1.0], dtype=F64)
    z0 = torch.tensor([[1.0, -1.2, 0.3], [-0.5, 0.7, -1.5]], dtype=F64)
    exact = mu + sigma * z0
    v = gaussian_field(mu, sigma)
    euler_orders, _ = _order(euler, v, z0, exact, [40, 80, 160])
    heun_orders, _ = _order(heun, v, z0, exact, [40, 80, 160])
    ab2_orders, _ = _order(ab2, v, z0, exact, [40, 80, 160])
    assert all(0.9 < p < 1.1 for p in euler_orders), euler_orders
    assert all(1.85 < p < 2.15 for p in heun_orders), heun_orders
    assert all(1.85 < p < 2.15 for p in ab2_orders), ab2_orders


def test_ab2_reaches_heun50_with_half_the_evaluations():
    m = torch.tensor([1.0, 0.5, -0.7], dtype=F64)
    v = mixture_field(m, sigma=0.1)
    z0 = torch.randn(64, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    fine = rk4(v, z0, grid(4000))
    assert (fine - rk4(v, z0, grid(2000))).abs().max() < 1e-7  # the fine solution is converged

    heun_v, ab2_v = Counted(v), Counted(v)
    heun_err = (heun(heun_v, z0, grid(50)) - fine).abs().max().item()
    ab2_err = (ab2(ab2_v, z0, grid(50)) - fine).abs().max().item()
    assert heun_v.calls == 99 and ab2_v.calls == 51
    assert ab2_err < heun_err  # measured: 3.7e-3 vs 4.6e-3
    # Euler with as many evaluations as ab2 is far worse.
    assert (euler(v, z0, grid(51)) - fine).abs().max().item() > 5 * ab2_err


# -- DPM-Solver++ --------------------------------------------------------------------------------------


def lambda_grid(n: int, a: float = 0.05, b: float = 0.95) -> torch.Tensor:
    """n steps uniform in lambda = logit t between t = a and t = b (where every step is a full one)."""
    la, lb = math.log(a / (1 - a)), math.log(b / (1 - b))
    return torch.sigmoid(torch.linspace(la, lb, n + 1, dtype=F64))


def test_dpmpp_registered_and_one_evaluation_a_step_never_at_one():
    assert gen.build("sampler", "dpmpp_2m") is dpmpp_2m and gen.build("sampler", "dpmpp_3m") is dpmpp_3m
    for solver in (dpmpp_2m, dpmpp_3m):
        v = Counted(lambda z, t: -z)
        solver(v, torch.ones(1, 2, dtype=F64), grid(6))
        assert v.calls == 6 and max(v.times) == pytest.approx(5 / 6)


def test_dpmpp_first_order_step_is_euler_and_the_last_step_returns_the_data_prediction():
    z0 = torch.tensor([[0.3, -1.0]], dtype=F64)
    x = torch.tensor([[2.0, 0.5]], dtype=F64)

    def v(z, t):  # the exact velocity toward a fixed x: x̂ = x everywhere
        return (x - z) / (1 - float(t))

    for solver in (dpmpp_2m, dpmpp_3m):
        # With x̂ constant the exact solution z_t = (1 - t) eps + t x is reproduced on any grid.
        ts = torch.tensor([0.0, 0.1, 0.45, 0.7, 0.93, 1.0], dtype=F64)
        torch.testing.assert_close(solver(v, z0, ts), x, rtol=0, atol=1e-14)
    one = dpmpp_2m(lambda z, t: z, z0, torch.tensor([0.0, 0.5], dtype=F64))
    torch.testing.assert_close(one, euler(lambda z, t: z, z0, torch.tensor([0.0, 0.5], dtype=F64)))


def test_dpmpp_2m_by_hand():
    # v = z: x̂ = z + (1 - s) z. Step 1 (from t = 0) is first order; step 2 extrapolates x̂ in lambda.
    z0 = torch.tensor([[1.0]], dtype=F64)
    ts = torch.tensor([0.0, 0.25, 0.5], dtype=F64)
    x0 = z0 * 2  # x̂ at s = 0
    z1 = 0.75 * z0 + 0.25 * x0
    x1 = z1 * (1 + 0.75)
    lam = [math.log(0.25 / 0.75), 0.0]
    # lambda(0) = -inf: the second step has no usable history either -> first order as well
    z2 = (0.5 / 0.75) * z1 + (0.25 / 0.75) * x1
    torch.testing.assert_close(dpmpp_2m(lambda z, t: z, z0, ts), z2, rtol=0, atol=1e-15)
    # A third step uses the two previous data predictions: D = x̂ + (x̂ - x̂_prev) / (2 r).
    ts = torch.tensor([0.0, 0.25, 0.5, 0.8], dtype=F64)
    x2 = z2 * 1.5
    h_prev, h = lam[1] - lam[0], math.log(0.8 / 0.2) - lam[1]
    d = x2 + 0.5 * (x2 - x1) / (h_prev / h)
    z3 = (0.2 / 0.5) * z2 + (0.3 / 0.5) * d
    torch.testing.assert_close(dpmpp_2m(lambda z, t: z, z0, ts), z3, rtol=0, atol=1e-15)


def test_dpmpp_convergence_orders():
    mu = torch.tensor([0.5, -0.3, 0.8], dtype=F64)
    sigma = torch.tensor([0.3, 0.5, 1.0], dtype=F64)
    z0 = torch.tensor([[1.0, -1.2, 0.3], [-0.5, 0.7, -1.5]], dtype=F64)
    v = gaussian_field(mu, sigma)

    def marginal(t):  # the exact flow of Gaussian data: z_t = t mu + sqrt(t^2 sigma^2 + (1 - t)^2) z_0
        return t * mu + torch.sqrt(t * t * sigma**2 + (1 - t) ** 2) * z0

    start, exact = marginal(0.05), marginal(0.95)
    errors = {}
    for name, solver in (("2m", dpmpp_2m), ("3m", dpmpp_3m), ("euler", euler)):
        errors[name] = [
            (solver(v, start, lambda_grid(n)) - exact).abs().max().item() for n in (8, 16, 32, 64)
        ]
    orders = {k: [math.log2(a / b) for a, b in zip(e[:-1], e[1:], strict=True)] for k, e in errors.items()}
    assert orders["euler"][-1] == pytest.approx(1.0, abs=0.1)
    assert orders["2m"][-1] == pytest.approx(2.0, abs=0.15)
    # 3M starts with a first- and a second-order step (the history fills up), which bounds its order
    # by 2 as well; its error is still the smallest from 16 steps on.
    assert orders["3m"][-1] > 1.9
    assert all(e3 < e2 for e3, e2 in zip(errors["3m"][1:], errors["2m"][1:], strict=True))


class ClampedToward:
    """The field an x-prediction's sampler forms for a fixed x̂ = x: (x - z) / max(1 - t, t_eps)."""

    def __init__(self, x, t_eps):
        self.x, self.t_eps, self.times = x, t_eps, []

    def __call__(self, z, t):
        self.times.append(float(t))
        return (self.x - z) / max(1 - float(t), self.t_eps)


def test_dpmpp_integrates_the_data_end_clamp_exactly():
    # From z at t = 0 with x̂ = x constant: exact solution (1 - t) eps + t x up to 1 - t_eps, then the
    # relaxation dz/dt = (x - z) / t_eps: z_1 = x + (z_c - x) e^-1 with z_c the state at 1 - t_eps.
    eps = torch.tensor([[0.3, -1.0]], dtype=F64)
    x = torch.tensor([[2.0, 0.5]], dtype=F64)
    t_eps = 0.05
    z_c = t_eps * eps + (1 - t_eps) * x
    exact = x + (z_c - x) * math.exp(-1)
    assert isinstance(ClampedToward(x, t_eps), gen.DataClampedVelocity)
    for ts in (grid(4), grid(50), torch.tensor([0.0, 0.3, 0.96, 0.98, 1.0], dtype=F64)):
        for solver in (dpmpp_2m, dpmpp_3m):
            torch.testing.assert_close(solver(ClampedToward(x, t_eps), eps, ts), exact, rtol=0, atol=1e-14)
    # Heun-1000 (the benchmark's reference) converges to the same point.
    torch.testing.assert_close(heun(ClampedToward(x, t_eps), eps, grid(1000)), exact, rtol=0, atol=1e-5)
    # A field that does not say where its clamp begins is taken as the plain flow: one jump to x̂.
    plain = lambda z, t: ClampedToward(x, t_eps)(z, t)  # noqa: E731
    torch.testing.assert_close(dpmpp_2m(plain, eps, grid(4)), x, rtol=0, atol=1e-14)


def test_the_driver_says_where_an_x_predictions_clamp_begins():
    net = lambda z, t, y: z  # noqa: E731
    labels = torch.zeros(2, dtype=torch.long)
    assert guided_velocity(net, labels, prediction="x", t_eps=0.05, num_classes=0).t_eps == 0.05
    assert guided_velocity(net, labels, prediction="v", t_eps=0.05, num_classes=0).t_eps == 0.0
    assert guided_velocity(net, labels, prediction="eps", t_eps=0.05, num_classes=0).t_eps == 0.0


# -- dopri5 and Euler–Maruyama ---------------------------------------------------------------------------


def test_dopri5_meets_its_tolerance_on_the_gaussian_flow():
    mu = torch.tensor([0.5, -0.3, 0.8], dtype=F64)
    sigma = torch.tensor([0.3, 0.5, 1.0], dtype=F64)
    z0 = torch.tensor([[1.0, -1.2, 0.3], [-0.5, 0.7, -1.5]], dtype=F64)
    v = Counted(gaussian_field(mu, sigma))
    loose = gen.build("sampler", "dopri5", atol=1e-4, rtol=1e-4)
    tight = gen.build("sampler", "dopri5", atol=1e-9, rtol=1e-9)
    err_loose = (loose(v, z0, grid(1)) - (mu + sigma * z0)).abs().max().item()
    calls_loose, v.calls = v.calls, 0
    err_tight = (tight(v, z0, grid(50)) - (mu + sigma * z0)).abs().max().item()
    assert err_tight < 1e-7 < err_loose < 1e-2 and v.calls > calls_loose  # tighter: more evaluations
    assert (gen.resolve_config("sampler", "dopri5").atol, gen.resolve_config("sampler", "dopri5").rtol) == (
        1e-6,
        1e-3,
    )


def test_dopri5_without_torchdiffeq_is_one_line_at_recipe_load(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_torchdiffeq(name, *args, **kwargs):
        if name == "torchdiffeq":
            raise ImportError("no module named torchdiffeq")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torchdiffeq)
    with pytest.raises(
        gen.RecipeError, match=r"^\[sample\]: sampler 'dopri5' needs torchdiffeq: pip install 'gen\[ode\]'"
    ):
        gen.resolve_config("sampler", "heun")  # other samplers are unaffected
        from gen.components import validate_config
        from gen.sampling.config import SampleConfig

        validate_config(SampleConfig, {"sampler": "dopri5"}, section="sample", file=None)


def test_euler_maruyama_keeps_the_marginals_and_is_keyed_by_the_start_noise():
    # Gaussian data N(mu, sigma^2): the SDE with the flow's marginals ends in the same distribution.
    mu, sigma = torch.tensor([0.7], dtype=F64), torch.tensor([0.4], dtype=F64)
    v = gaussian_field(mu, sigma)
    z0 = torch.randn(3000, 1, generator=torch.Generator().manual_seed(0), dtype=F64)
    sde = gen.build("sampler", "euler_maruyama", diffusion=1.0)
    x = sde(v, z0, grid(50))
    assert x.mean().item() == pytest.approx(0.7, abs=0.03) and x.std().item() == pytest.approx(0.4, abs=0.03)
    ode = euler(v, z0, grid(50))
    assert (x - ode).abs().mean().item() > 0.05  # it is stochastic: not the ODE's transport
    # Sample i's noise depends on its start only: the same rows in another batch give the same results.
    part = sde(v, z0[[5, 3]], grid(10))
    torch.testing.assert_close(part, sde(v, z0, grid(10))[[5, 3]], rtol=0, atol=0)
    # diffusion 0 is Euler; last_step x returns the data prediction of the last point.
    torch.testing.assert_close(
        gen.build("sampler", "euler_maruyama", diffusion=0.0)(v, z0[:4], grid(8)), euler(v, z0[:4], grid(8))
    )
    with pytest.raises(gen.RecipeError, match="last_step: must be in"):
        gen.build("sampler", "euler_maruyama", last_step="tweedie")


def test_a_piece_that_ends_before_t_1_is_solved_to_its_end():
    """split_interval hands a solver pieces of the grid: Heun then ends with a Heun step (the Euler step
    is for t = 1 only), and Euler–Maruyama's noise-free last step is the step into t = 1 only."""
    z0 = torch.tensor([[1.0, -2.0]], dtype=F64)
    v = Counted(lambda z, t: z)
    piece = torch.tensor([0.0, 0.25, 0.5], dtype=F64)
    torch.testing.assert_close(heun(v, z0, piece), z0 * (1 + 0.25 + 0.25**2 / 2) ** 2, rtol=0, atol=1e-14)
    assert v.calls == 4 and max(v.times) == 0.5
    # the Gaussian flow solved in two pieces at second order, as on the whole grid
    mu, sigma = torch.tensor([0.7], dtype=F64), torch.tensor([0.4], dtype=F64)
    field, z = gaussian_field(mu, sigma), torch.linspace(-2, 2, 5, dtype=F64)[:, None]
    exact = rk4(field, z, grid(2000))
    errors = [
        float((heun(field, heun(field, z, grid(n)[: n // 3 + 1]), grid(n)[n // 3 :]) - exact).abs().max())
        for n in (24, 48)
    ]
    assert math.log2(errors[0] / errors[1]) > 1.7
    # one SDE step to t = 0.5 adds its noise; into t = 1 it would be the drift alone (Euler's step)
    sde, half = gen.build("sampler", "euler_maruyama", diffusion=1.0), torch.tensor([0.0, 0.5], dtype=F64)
    assert (sde(field, z, half) - euler(field, z, half)).abs().min() > 1e-3
    torch.testing.assert_close(
        sde(field, z, torch.tensor([0.5, 1.0], dtype=F64)),
        euler(field, z, torch.tensor([0.5, 1.0], dtype=F64)),
    )
