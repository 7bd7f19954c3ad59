"""Lesson 1: forecasting a time series one step ahead.

Two series, four forecasters, one question: what is tomorrow's value?

    naive          tomorrow = today
    AR(p)          a linear function of the last p values, fitted by least squares
    windowed net   a feed-forward net over the last 12 values (no memory beyond them)
    RNN            a many-to-one recurrent net that reads the same 12 values in order

On an AR(2) series the noise is the floor no forecaster can go below, so the
RNN is measured against it; on both series it must beat the naive forecast.

    .venv/bin/python lessons/01_time_series.py [--quick] [--seed S] [--out DIR]
        [--width W] [--seasonal-noise S] [--train-steps N]
"""
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FormatStrFormatter, LogLocator, MaxNLocator, NullFormatter

import microseq as ms
from microseq.data import ar_series, minibatches, seasonal_series, windows
from microseq.functional import mse_loss
from microseq.lesson import Lesson
from microseq.models.sequence import ManyToOne, WindowMLP
from microseq.optim import Adam
from microseq.train import train

AR_COEFFS, AR_NOISE = (1.2, -0.5), 1.0
PERIOD = 12
TRAIN_FRACTION = 0.7

lesson = Lesson(1, "Time series: AR(p), a windowed net and an RNN", arguments={
    "--width": dict(type=int, default=12, metavar="W",
                    help="values every forecaster sees, at most (default 12)"),
    "--seasonal-noise": dict(type=float, default=0.1, metavar="S",
                             help="noise standard deviation of the seasonal series (default 0.1)"),
    "--train-steps": dict(type=int, default=None, metavar="N",
                          help="Adam steps for each net (default 300 quick, 1500 full)")})
quick = lesson.quick
WIDTH = lesson.args.width    # every forecaster sees (at most) the last WIDTH values
SEASONAL_NOISE = lesson.args.seasonal_noise
n_steps = 1200 if quick else 3000
train_steps = lesson.args.train_steps or (300 if quick else 1500)
ms.manual_seed(lesson.seed)

# ---------------------------------------------------------------- the data
lesson.section("Two series")
lesson.say(f"""
    A time series is a list of measurements taken at regular intervals, and
    the simplest question to ask of it is what the next value will be. We
    make two series of {n_steps} steps each, so that we know exactly what
    is in them.

    The first is autoregressive, AR(2): each value is {AR_COEFFS[0]} times the
    one before, minus {-AR_COEFFS[1]} times the one before that, plus fresh
    Gaussian noise of variance {AR_NOISE ** 2:g}. The noise cannot be foreseen,
    so even the true rule makes an error of that size: it is the floor.

    The second is seasonal: a sine wave with period {PERIOD} plus noise of
    standard deviation {SEASONAL_NOISE}, like a monthly measurement with a
    yearly cycle.
    """)
SERIES = {
    "AR(2)": ar_series(n_steps, lesson.seed, coeffs=AR_COEFFS, noise_std=AR_NOISE),
    "seasonal": seasonal_series(n_steps, lesson.seed + 1, period=PERIOD,
                                noise_std=SEASONAL_NOISE),
}
n_train = int(TRAIN_FRACTION * n_steps)
lesson.say(f"""
    Each forecaster predicts x[t] from the window x[t-{WIDTH}] .. x[t-1].
    The first {n_train} steps are for training; the forecasts of the last
    {n_steps - n_train} steps are the test. Their windows may reach back into
    the training part: that history is known when the forecast is made.
    """)


def split(series):
    """Windows (N, WIDTH) and next values (N,), cut into train and test by
    the position of the value being forecast."""
    X, y = windows(series, WIDTH)
    cut = n_train - WIDTH
    return X[:cut], y[:cut], X[cut:], y[cut:]


def mse(prediction, target):
    return float(np.mean((prediction - target) ** 2))


# ------------------------------------------------------- classical baselines
def fit_ar(X, y, p):
    """Least squares for y ~ c + a_1 x[t-1] + ... + a_p x[t-p]; returns (a, c)."""
    design = np.column_stack([X[:, ::-1][:, :p], np.ones(len(X))])
    solution, *_ = np.linalg.lstsq(design, y, rcond=None)
    return solution[:-1], solution[-1]


def predict_ar(X, a, c):
    return X[:, ::-1][:, :len(a)] @ a + c


def choose_order(X, y):
    """The p in 1..WIDTH with the lowest Bayesian information criterion,
    n log(residual variance) + p log(n): the fit must improve by more than
    chance for each extra weight."""
    n = len(y)
    bic = [n * np.log(mse(predict_ar(X, *fit_ar(X, y, p)), y)) + p * np.log(n)
           for p in range(1, WIDTH + 1)]
    return 1 + int(np.argmin(bic))


lesson.section("Baselines: today's value, and least squares")
lesson.say("""
    The naive forecast says tomorrow will be like today. It needs no
    training and is surprisingly hard to beat on slow-moving series, so any
    model worth its parameters must beat it.

    The classical model is AR(p): a weighted sum of the last p values plus a
    constant, with the weights found by ordinary least squares (one call to
    numpy's lstsq). We pick p by the Bayesian information criterion, the
    classical rule that charges every extra weight a fixed price.
    """)
results = {}   # series name -> {forecaster: test predictions}
data = {}
for name, series in SERIES.items():
    X_train, y_train, X_test, y_test = split(series)
    data[name] = X_train, y_train, X_test, y_test
    p = choose_order(X_train, y_train)
    a, c = fit_ar(X_train, y_train, p)
    results[name] = {"naive": X_test[:, -1], f"AR({p})": predict_ar(X_test, a, c)}
    coeffs = ", ".join(f"{v:+.3f}" for v in a[:4]) + (", ..." if p > 4 else "")
    lesson.say(f"{name}: the criterion picks p = {p}; fitted weights {coeffs}")

# The true rule, with the true coefficients: its error is the noise itself.
X_test, y_test = data["AR(2)"][2:]
oracle = predict_ar(X_test, np.array(AR_COEFFS), 0.0)
noise_variance = mse(oracle, y_test)
lesson.say(f"""
    For the AR(2) series we also know the true rule. Its test error is the
    noise actually drawn on the test steps: {noise_variance:.4f} (the noise was
    drawn with variance {AR_NOISE ** 2:g}). No forecaster can do better on
    average, so this is the yardstick for the RNN.
    """)


# --------------------------------------------------------- the neural nets
lesson.section("A windowed net and an RNN")
lesson.say(f"""
    Both nets see the same {WIDTH} values, scaled to mean 0 and standard
    deviation 1 with the training part's statistics (a net learns faster on
    numbers of order one).

    The windowed feed-forward net takes the window as one flat vector of
    {WIDTH} numbers, with one hidden layer of tanh units: a nonlinear AR({WIDTH})
    model, with no notion of order beyond the position of each input.

    The RNN reads the window one value at a time, x[t-{WIDTH}] first, updating
    a hidden state h = tanh(W_ih x + W_hh h + b) at every step with the same
    weights; after the last value, a linear layer turns h into the forecast.
    This is the many-to-one shape: a sequence in, one number out.
    """)


def fit_net(model, name, kind):
    """Train `model` on the scaled training windows of series `name` with
    Adam, and return its test forecasts (original units) and history."""
    X_train, y_train, X_test, y_test = data[name]
    mean, std = X_train.mean(), X_train.std()

    def scaled(X):
        X = ((X - mean) / std).astype(np.float32)
        return X[..., None] if kind == "RNN" else X  # the RNN reads one value per step

    inputs, targets = scaled(X_train), ((y_train - mean) / std).astype(np.float32)
    test_inputs = scaled(X_test)

    def batches(rng):
        for idx in minibatches(len(inputs), 64, rng):
            yield inputs[idx], targets[idx]

    def loss_fn(model, batch):
        x, y = batch
        return mse_loss(model(x)[:, 0], y)

    def forecast(model):
        with ms.no_grad():
            return model(test_inputs).data[:, 0] * std + mean

    history = train(model, Adam(model.parameters(), lr=1e-3), batches, loss_fn, train_steps,
                    seed=lesson.seed, evaluate=lambda m: {"test_mse": mse(forecast(m), y_test)},
                    eval_every=max(1, train_steps // 30), desc=f"{kind} on {name}")
    return forecast(model), history


histories = {}
for name in SERIES:
    for kind, model in (("windowed net", WindowMLP(WIDTH, 32)),
                        ("RNN", ManyToOne(1, 32, 1))):
        results[name][kind], histories[name, kind] = fit_net(model, name, kind)
        lesson.say(f"{kind} on {name}: {model.num_parameters()} parameters, "
                   f"test MSE {histories[name, kind][-1][2]['test_mse']:.4f}")


# ------------------------------------------------------------------ results
lesson.section("Test errors")
X_train, y_train, X_test, y_test = data["seasonal"]
seasonal_ar2 = mse(predict_ar(X_test, *fit_ar(X_train, y_train, 2)), y_test)
errors = {name: {kind: mse(pred, data[name][3]) for kind, pred in preds.items()}
          for name, preds in results.items()}
floors = {"AR(2)": noise_variance, "seasonal": SEASONAL_NOISE ** 2}
for name, table in errors.items():
    rows = "\n".join(f"    {kind:<14}{value:10.4f}{value / table['naive']:10.2f}"
                     f"{value / floors[name]:10.2f}" for kind, value in table.items())
    lesson.say(f"{name}: one-step test MSE, and as a multiple of the naive forecast's "
               f"and of the noise variance\n\n"
               f"    {'forecaster':<14}{'MSE':>10}{'/ naive':>10}{'/ noise':>10}\n{rows}")
trained = [kind for kind in errors["AR(2)"] if kind != "naive"]
seasonal_window = {kind: v for kind, v in errors["seasonal"].items()
                   if kind in ("windowed net", "RNN") or kind.startswith("AR(") and kind != "AR(2)"}
lesson.say(lesson.claim(
    "worst <= 1.1", worst=max(errors["AR(2)"][k] for k in trained) / noise_variance,
    yes="""On the AR(2) series every trained model lands close to the noise floor
        (the worst at {worst:.3f} times the noise variance): the process is
        linear, so least squares already has the right form and the nets can
        only match it.""",
    no="""On the AR(2) series not every trained model reaches the noise floor
        (the worst is at {worst:.3f} times the noise variance), although least
        squares already has the right form for this linear process.""",
    short="""On the AR(2) series the nets of this quick run stay above the noise
        floor (the worst at {worst:.3f} times the noise variance), although least
        squares already has the right form for this linear process."""), f"""
    On the seasonal series the naive forecast is wrong by the whole change
    from one step to the next. A clean sine obeys an exact AR(2) rule, but
    here every value carries noise, and a rule that leans on just two noisy
    values passes it on, amplified: AR(2) reaches only {seasonal_ar2:.4f}.
    """ + lesson.claim(
    "window < ar2 and floor <= 1.3", ar2=seasonal_ar2,
    window=max(seasonal_window.values()),
    floor=max(seasonal_window.values()) / floors["seasonal"],
    yes="""The models that use the whole window average the noise away and
        recover the cycle almost down to the noise floor (the worst at {floor:.2f}
        times the noise variance).""",
    no="""The models that use the whole window do not all get close to the noise
        floor here (the worst at {floor:.2f} times the noise variance).""",
    short="""This quick run is too short to bring the models that use the whole
        window down to the noise floor (the worst at {floor:.2f} times the noise
        variance)."""))

COLOURS = {"naive": "0.6", "AR": "C1", "windowed net": "C2", "RNN": "C3"}

# One-step forecasts over the last stretch of each test set.
shown = 60
fig, axes = plt.subplots(len(SERIES), 1, figsize=(10, 6.5))
for ax, (name, preds) in zip(axes, results.items(), strict=True):
    y_test = data[name][3]
    t = np.arange(n_steps - shown, n_steps)
    ax.plot(t, y_test[-shown:], "k.-", lw=1, label="series", zorder=5)
    for kind, pred in preds.items():
        ax.plot(t, pred[-shown:], lw=1.2, color=COLOURS[kind.split("(")[0]], label=kind)
    ax.set_title(f"{name}: one-step forecasts on the last {shown} test steps; "
                 "the closer a line follows the black dots, the better")
    ax.set(xlabel="time step t", ylabel="value")
    ax.legend(fontsize=8, ncol=5, loc="upper left")
fig.tight_layout()
lesson.savefig(fig, "forecasts")



def log_axis(ax):
    """A log-scale y axis labelled with plain numbers."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 1.5, 2.0, 3.0, 5.0, 7.0)))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(NullFormatter())


# Test MSE per model, against the noise floor.
fig, axes = plt.subplots(1, len(SERIES), figsize=(10, 3.8))
for ax, (name, table) in zip(axes, errors.items(), strict=True):
    bars = ax.bar(list(table), list(table.values()),
                  color=[COLOURS[kind.split("(")[0]] for kind in table])
    ax.bar_label(bars, [f"{v:.4g}\n({v / floors[name]:.2f}x noise)" for v in table.values()],
                 fontsize=7)
    ax.axhline(floors[name], color="k", ls="--", lw=1, label="noise variance")
    log_axis(ax)
    ax.set_ylim(floors[name] * 0.9, max(table.values()) * 1.6)
    best = min(table, key=table.get)
    ax.set_title(f"{name}: one-step test MSE\n(lowest: {best}, {table[best] / floors[name]:.2f}x "
                 "the noise floor)", fontsize=10)
    ax.set_ylabel("test MSE (log scale)")
    ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    ax.legend(fontsize=8, loc="upper right")
fig.tight_layout()
lesson.savefig(fig, "test_mse")

# Test MSE of the nets during training, against the fixed forecasters.
fig, axes = plt.subplots(1, len(SERIES), figsize=(10, 3.8))
for ax, name in zip(axes, SERIES, strict=True):
    for kind in ("windowed net", "RNN"):
        ax.plot(*histories[name, kind].metric("test_mse"), color=COLOURS[kind], label=kind)
    ar_name = next(kind for kind in errors[name] if kind.startswith("AR("))
    ax.axhline(errors[name]["naive"], color=COLOURS["naive"], ls=":", label="naive")
    ax.axhline(errors[name][ar_name], color=COLOURS["AR"], ls="-.", lw=1, label=ar_name)
    ax.axhline(floors[name], color="k", ls="--", lw=1, label="noise variance")
    log_axis(ax)
    ax.set_xlabel("training step")
    ax.set_ylabel("test MSE (log scale)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"{name}: test MSE while training:\nhow close do the nets get to the noise "
                 "floor (dashed)?",
                 fontsize=10)
    ax.legend(fontsize=8)
fig.tight_layout()
lesson.savefig(fig, "training")

rnn_over_noise = errors["AR(2)"]["RNN"] / noise_variance
lesson.say(f"""
    The RNN's test error on AR(2) is {rnn_over_noise:.3f} times the noise
    variance. It was never told the rule, only shown windows.
    """)
lesson.metric("ar_rnn_mse_over_noise", rnn_over_noise,
              threshold=1.25 if quick else 1.10, higher_is_better=False)
for name in SERIES:
    lesson.metric(f"{name.lower().replace('(2)', '2')}_rnn_mse_over_naive",
                  errors[name]["RNN"] / errors[name]["naive"], threshold=1.0,
                  higher_is_better=False)
lesson.try_this(
    ("--width 2", "With only the last 2 values in view, which forecaster loses most on the "
                  "seasonal series, and does any of them still beat the naive forecast?"),
    ("--seasonal-noise 0.5", "With five times the noise on the seasonal series, does the "
                             "RNN's error stay close to the new noise floor?"),
    ("--train-steps 30", "After only 30 Adam steps, does the RNN beat AR(2) fitted by least "
                         "squares on the AR(2) series?"))
lesson.finish()
