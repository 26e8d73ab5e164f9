"""Adversarial training: a generator against its critic, two models and two optimizers.

A spec declares the pair on the generator: `head fake: adversarial(critic="Discriminator")`
names the model of the same file that scores a sample real (logit > 0) or generated. The
generator's input is noise, drawn here (standard normal, shaped like the input); the data
feeds the critic, in the pixel scale the task asks for ([-1, 1], a Tanh generator's).
Each step, like DCGAN's: the critic takes one step on a real batch and as many generated
samples (binary cross-entropy, `losses.critic_loss`), then the generator one step on the
critic's verdict on those samples (the non-saturating loss, `losses.nonsaturating`).

`trainer.train` runs this loop inside the same run-folder guarantees as any run (size and
disk checks, the lock, no training anew over a run without `overwrite`): `prepare` checks
the settings and builds the critic before the folder is touched, `train_pair` trains. The
loop reuses the trainer's parts -- Loader, optimizer and schedule, the non-finite guard,
metrics.csv, progress and summary -- with a second optimizer; pair.py builds and checks the
pair (`--set` values go to the model that has the parameter).

The run folder's last/ is one checkpoint (checkpoint.commit): the generator as
model.safetensors, the critic as critic.safetensors, state.pt with both optimizers, the
schedule, the data position and the RNG states -- so N/2 + N/2 resumed steps give the weights
and metrics.csv of N in one go. A GAN run has no best/: its validation loss measures the
generator against a critic that changes too, so it does not rank generators (`--checkpoint
best` is refused, `early_stop` and `best_metric` too). A NaN or Inf loss, weight or optimizer
state stops the run before it can overwrite last/. Every validation pass draws
`figures/samples_<step>.png` from fixed noise. One process (no torchrun), one micro-batch a
step, metrics.csv only (no `log:`).
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from . import checkpoint as ckpt
from . import distributed as ddp
from .config import RunConfig
from .data import Data, Loader, eval_batches
from .errors import TrainError
from .grids import draw, fixed_noise
from .guard import FiniteGuard, NonFinite, check_tensors, fault_message
from .heads import outputs_by_head, task_of
from .losses import critic_loss, nonsaturating
from .metrics import HeadMeter, format_metrics
from .optim import Schedule, make_optimizer, resolve_steps
from .pair import CRITIC_WEIGHTS, adversarial_head, build_critic, check_pair, critic_data, noise, split_overrides
from .precision import autocast
from .rng import rng_state, seed_all, set_rng_state
from .runfolder import METRICS_CSV, read_meta, save_config, write_run_files
from .runlog import MetricsCsv, Progress, csv_columns, val_columns
from .trainer import TrainResult, _StopFlag, plan_step


@torch.no_grad()
def evaluate_pair(gen: torch.nn.Module, critic: torch.nn.Module, head: str, data: Data, cfg: RunConfig,
                  max_batches: int | None = None) -> dict[str, float]:
    """The generator's loss on fixed noise, the critic's loss, and how real the critic believes
    real and generated samples are (`d_real`, `d_fake`), over (a capped part of) the validation split.
    Keys as `validation.evaluate` gives them, plus `critic_loss`."""
    info = gen.netspec
    h = next(x for x in info.heads if x.name == head)
    device = next(gen.parameters()).device
    cap = cfg.eval_batches if max_batches is None else max_batches
    meter = HeadMeter(task_of(h).loss, task_of(h).metrics)
    critic_sum, n = 0.0, 0
    was = (gen.training, critic.training)
    gen.eval(), critic.eval()
    try:
        for i, batch in enumerate(eval_batches(data.val, cfg.batch_size, cap, cfg.seed)):
            real = batch["x"].to(device)
            z = fixed_noise(info, len(real), cfg.seed + i).to(device)
            with autocast(device, cfg.precision):
                fake_score = critic(outputs_by_head(gen(z), info)[head]).float()
                real_score = critic(real).float()
            meter.add(fake_score, {"real_score": real_score})
            terms = critic_loss(real_score, fake_score)
            critic_sum, n = critic_sum + terms.sum().item(), n + terms.numel()
    finally:
        gen.train(was[0]), critic.train(was[1])
    r = meter.result()
    res = {"loss": h.weight * r["loss"], "critic_loss": critic_sum / max(1, n)}
    for k, v in r.items():
        res[f"{h.name}/{k}"] = v
        if k != "loss":
            res[k] = v
    return res


@dataclass
class Pair:
    """What `prepare` settles before the run folder is touched: the critic, built, and which
    --set values went to which model."""
    critic: torch.nn.Module
    head: object  # the generator's adversarial head
    overrides: dict | None  # the generator's --set values (model.json's "overrides")
    critic_overrides: dict  # the critic's (model.json's "critic")
    parameters: int  # of both models: what the size and disk checks count


def prepare(gen: torch.nn.Module, cfg: RunConfig, dist: ddp.DistInfo, out: Path | None, resume: bool,
            overrides: dict | None) -> Pair:
    """Check that `cfg` suits a GAN and build its critic (a resumed run's with the --set values
    model.json keeps); raises TrainError."""
    if dist.world > 1:
        raise TrainError("adversarial training runs in one process; start it without torchrun")
    if cfg.grad_accum != 1:
        raise TrainError("adversarial training takes one batch per step; set grad_accum to 1")
    if cfg.precision == "fp16":
        raise TrainError("adversarial training runs in fp32 or bf16")
    if cfg.log:
        raise TrainError(f"adversarial training keeps metrics.csv only; leave out log: {', '.join(cfg.log)}")
    if cfg.early_stop or cfg.best_metric:
        raise TrainError("adversarial training keeps no best/ checkpoint (a GAN's validation loss does not rank "
                         "its generators): leave out " + ("early_stop" if cfg.early_stop else "best_metric"))
    info = gen.netspec  # trainer.train has checked its heads' tasks
    head = adversarial_head(info)
    if resume:
        critic_over = (read_meta(out).get("critic") or {}).get("overrides") or {}
    else:
        overrides, critic_over = split_overrides(info, overrides)
    critic = build_critic(info, critic_over)
    params = sum(p.numel() for p in gen.parameters()) + sum(p.numel() for p in critic.parameters())
    return Pair(critic, head, overrides, critic_over, params)


class _PairRun:
    """The state of one adversarial run: data position, both optimizers, the schedule, the step."""

    def __init__(self, gen, critic, head, cfg: RunConfig, data: Data, device, out: Path | None):
        self.gen, self.critic, self.head, self.cfg, self.data, self.device, self.out = \
            gen, critic, head, cfg, data, device, out
        self.info = gen.netspec
        self.loader = Loader(data.train, cfg.batch_size, cfg.seed)
        self.total = resolve_steps(cfg, self.loader)
        self.opt_g, self.opt_d = make_optimizer(gen, cfg, device), make_optimizer(critic, cfg, device)
        self.sched = Schedule(cfg, self.total)
        self.step = 0
        self.sums = torch.zeros(2)  # generator and critic losses since the last row
        self.sum_steps = 0
        self.last_log = (time.time(), 0)
        # the critic steps first: when its loss went bad, the generator's follows on the same step
        self.guard = FiniteGuard([], device, ddp.DistInfo(),
                                 more=("the critic's loss", f"the loss of head '{head.name}'"))
        self.saved_step: int | None = None  # step of the last checkpoint this run wrote or resumed from
        self.logs: list = []  # metrics.csv (a run with a folder)

    def restore(self, warn: Callable[[str], None]) -> None:
        """Continue from last/: both models' weights, both optimizers, step, data, RNGs. A
        damaged last/ gives way to a complete last.prev/ (a save cut short)."""
        ck = ckpt.open_checkpoint(self.out, ckpt.LAST, files=(CRITIC_WEIGHTS,), warn=warn)
        state = ck.state
        ckpt.load_weights_file(self.gen, ck.weights)
        ckpt.load_weights_file(self.critic, ck.file(CRITIC_WEIGHTS))
        try:
            self.opt_g.load_state_dict(state["optimizer"])
            self.opt_d.load_state_dict(state["critic_optimizer"])
            self.step = int(state["step"])
            self.loader.load_state_dict(state["loader"])
            set_rng_state(state["rng"][0])
        except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as e:
            raise ckpt.CheckpointError(f"'{ck.folder / ckpt.STATE}' does not fit this run ({e})") from None
        self.saved_step = self.step
        if ck.folder.name != ckpt.LAST:
            ckpt.discard(self.out, ckpt.LAST)  # the next save replaces it from last.prev's place
        if self.step >= self.total:
            raise TrainError(f"run '{self.out}' already finished {self.step} of {self.total} steps; "
                             "raise --steps to train on")

    def _update(self, opt, model, loss) -> None:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.cfg.grad_clip)
        opt.step()

    def train_step(self) -> float:
        lr = self.sched.apply(self.opt_g, self.step)
        self.sched.apply(self.opt_d, self.step)
        real = self.loader.next()["x"].to(self.device)
        z = noise(self.info, len(real), self.device)
        with autocast(self.device, self.cfg.precision):
            fake = outputs_by_head(self.gen(z), self.info)[self.head.name]
            d_loss = critic_loss(self.critic(real).float(), self.critic(fake.detach()).float()).mean()
        self._update(self.opt_d, self.critic, d_loss)
        with autocast(self.device, self.cfg.precision):
            g_loss = nonsaturating(self.critic(fake).float(), {}).mean()
        self._update(self.opt_g, self.gen, self.head.weight * g_loss)
        self.sums += torch.stack([g_loss.detach(), d_loss.detach()]).cpu()
        self.step += 1
        self.sum_steps += 1
        self.guard.observe(self.step, self.head.weight * g_loss, [d_loss, g_loss])
        return lr

    def loss_row(self, lr: float) -> dict:
        g, d = (self.sums / max(1, self.sum_steps)).tolist()
        now = time.time()
        speed = (self.step - self.last_log[1]) * self.cfg.batch_size / max(now - self.last_log[0], 1e-9)
        self.last_log, self.sums, self.sum_steps = (now, self.step), torch.zeros(2), 0
        return {"step": self.step, f"loss_{self.head.name}": g, "loss": self.head.weight * g, "loss_critic": d,
                "lr": lr, "samples_per_s": speed}

    def check_finite(self, tensors: bool) -> None:
        """Raise TrainError when a loss since the last check (or, with `tensors`, a weight or
        optimizer state of either model) is NaN or Inf -- before anything of this step is saved."""
        try:
            self.guard.check()
            if tensors:
                check_tensors(self.gen, self.opt_g, self.step, ddp.DistInfo())
                check_tensors(self.critic, self.opt_d, self.step, ddp.DistInfo())
        except NonFinite as e:
            raise TrainError(fault_message(e, self.out, self.saved_step, self.cfg)) from None

    def save(self, warn: Callable[[str], None]) -> None:
        """Checkpoint both models and both optimizers into last/ as one unit, then redraw curves.png."""
        if self.out is None:
            return
        self.check_finite(tensors=True)
        for log in self.logs:  # every row up to this step is on disk before the checkpoint names it
            log.sync()
        state = {"step": self.step, "total_steps": self.total, "optimizer": self.opt_g.state_dict(),
                 "critic_optimizer": self.opt_d.state_dict(), "scheduler": self.sched.state_dict(),
                 "loader": self.loader.state_dict(), "rng": [rng_state()], "world": 1}
        step = str(self.step)
        files = {ckpt.WEIGHTS: ckpt.weights_writer(self.gen, {"model": self.info.name, "step": step}),
                 CRITIC_WEIGHTS: ckpt.weights_writer(self.critic, {"model": self.critic.netspec.name, "step": step}),
                 ckpt.STATE: ckpt.state_writer(state)}
        ckpt.commit(self.out, ckpt.LAST, files, self.step, {"model": self.info.name,
                                                             "critic": self.critic.netspec.name})
        self.saved_step = self.step
        try:
            from .plot import plot_curves

            plot_curves(self.out / METRICS_CSV, self.out / "curves.png")
        except Exception as e:  # noqa: BLE001 - a plotting failure must never lose a run
            warn(f"warning: could not draw curves.png: {e}")


def train_pair(gen: torch.nn.Module, pair: Pair, cfg: RunConfig, data: Data | str | None, out: Path | None,
               dist: ddp.DistInfo, resume: bool, stop_after: int | None, progress: bool, live: bool | None, stream,
               on_step) -> TrainResult:
    """`trainer.train`'s loop for a model with an adversarial head, once the run folder is
    checked and locked (`trainer._in_run_folder`): set up, restore, loop, close metrics.csv."""
    info, head, critic = gen.netspec, pair.head, pair.critic
    if isinstance(data, Data):
        real = data
    else:
        real = critic_data(data if isinstance(data, str) else None, info, critic, cfg)
    if cfg.data != real.name:
        cfg = cfg.replace(data=real.name)
    gen.to(dist.device), critic.to(dist.device)
    check_pair(gen, critic, head.name, real)
    seed_all(cfg.seed)
    run = _PairRun(gen, critic, head, cfg, real, dist.device, out)
    # warnings about the run folder show even without progress: they are about the user's data
    warn = lambda text: print(text, file=stream or sys.stderr, flush=True)  # noqa: E731
    if resume:
        run.restore(warn)
    if out is not None:
        if resume:
            save_config(out, cfg)
        else:
            write_run_files(out, info, cfg, real, pair.overrides,
                            extra={"critic": {"model": critic.netspec.name, "overrides": pair.critic_overrides}})
    params = sum(p.numel() for p in gen.parameters()), sum(p.numel() for p in critic.parameters())
    bar = Progress(run.total, run.step, progress, cfg.log_every, "samples", stream=stream, live=live)
    bar.message(f"{info.name} against {critic.netspec.name}: {params[0]:,} + {params[1]:,} parameters on "
                f"{dist.device}; {real.describe()}; {run.total} steps" + (f" (resuming at {run.step})" if resume else ""))
    stop = _StopFlag(enabled=True)
    try:
        if out is not None:
            cols = csv_columns(info, "samples")
            cols.insert(cols.index("loss") + 1, "loss_critic")
            cols.insert(cols.index("val_loss") + 1, "val_loss_critic")
            run.logs.append(MetricsCsv(out / METRICS_CSV, cols, run.step if resume else None))
        return _loop(run, bar, stop, stop_after, on_step)
    finally:
        stop.restore()
        bar.close()
        for log in run.logs:
            log.close()


def _loop(run: _PairRun, bar: Progress, stop: _StopFlag, stop_after: int | None, on_step) -> TrainResult:
    """Step until the schedule ends or a stop is asked for; log, evaluate, draw and checkpoint on their steps."""
    cfg, out, head = run.cfg, run.out, run.head
    result = TrainResult(out_dir=out, step=run.step, total_steps=run.total, seconds=0.0)
    run.last_log = (time.time(), run.step)
    while run.step < run.total:
        lr = run.train_step()
        step = result.step = run.step
        do_log, do_eval, do_save, want_stop = plan_step(cfg, step, run.total, stop_after, stop.set)
        if do_log or do_eval or want_stop or do_save:
            run.check_finite(tensors=False)
        row = run.loss_row(lr) if do_log or do_eval or want_stop else {}
        result.train_loss = row.get("loss", result.train_loss)
        if do_eval:
            result.val = evaluate_pair(run.gen, run.critic, head.name, run.data, cfg)
            row.update(val_columns(run.info, result.val))
            row["val_loss_critic"] = result.val["critic_loss"]
            if out is not None:
                try:
                    draw("samples", run.gen, head.name, run.data, run.device, cfg.seed, out, step)
                except Exception as e:  # noqa: BLE001 - a drawing failure must never lose a run
                    bar.message(f"warning: could not draw samples: {e}")
        if row:
            for log in run.logs:
                log.row(step, row)
            bar.update(step, f"loss {row['loss']:.4f}  critic {row['loss_critic']:.4f}  lr {lr:.2e}  "
                             f"{row['samples_per_s']:,.0f} samples/s", force=bool(do_eval))
            if do_eval:
                bar.message(f"step {step}: {format_metrics(result.val)}  critic {result.val['critic_loss']:.4f}")
        else:
            bar.update(step)
        if on_step is not None:
            on_step(step, row)
        if do_save or (want_stop and step < run.total):
            run.save(bar.message)
        if want_stop and step < run.total:
            result.interrupted = True
            if stop.set:
                bar.message(f"stopped at step {step}; continue with --resume {out}" if out else
                            f"stopped at step {step}")
            break
    return result
