"""Adversarial training: a generator against its critic, two models and two optimizers.

A spec declares the pair on the generator: `head fake: adversarial(critic="Discriminator")`
names the model of the same file that scores a sample real (logit > 0) or generated. The
generator's input is noise, drawn here (standard normal, shaped like the input); the data
feeds the critic, in the pixel scale the task asks for ([-1, 1], a Tanh generator's).
Each step, like DCGAN's: the critic takes one step on a real batch and as many generated
samples (binary cross-entropy, `losses.critic_loss`), then the generator one step on the
critic's verdict on those samples (the non-saturating loss, `losses.nonsaturating`).

The loop reuses the trainer's parts -- Loader, optimizer and schedule, checkpoints, progress
and metrics.csv -- with a second optimizer; pair.py builds and checks the pair (`--set` values
go to the model that has the parameter). The run folder holds the generator as
model.safetensors and the critic as critic.safetensors; state.pt both optimizers; every
validation pass draws `figures/samples_<step>.png` from fixed noise. One process (no torchrun),
one micro-batch a step.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from . import checkpoint as ckpt
from . import distributed as ddp
from .config import RunConfig
from .data import Data, Loader, eval_batches
from .errors import TrainError
from .grids import draw, fixed_noise
from .heads import outputs_by_head, task_of
from .losses import critic_loss, nonsaturating
from .metrics import HeadMeter, format_metrics
from .optim import Schedule, make_optimizer, resolve_steps
from .pair import CRITIC_WEIGHTS, adversarial_head, build_critic, check_pair, critic_data, noise, split_overrides
from .precision import autocast
from .runfolder import save_config, write_run_files
from .runlog import Progress, csv_columns, csv_value, open_metrics, val_columns
from .trainer import TrainResult, _StopFlag, _summary, seed_all


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

    def restore(self) -> None:
        state = ckpt.load_state(self.out)
        ckpt.load_weights_file(self.gen, self.out)
        ckpt.load_weights_file(self.critic, self.out / CRITIC_WEIGHTS)
        self.opt_g.load_state_dict(state["optimizer"])
        self.opt_d.load_state_dict(state["critic_optimizer"])
        self.step = int(state["step"])
        self.loader.load_state_dict(state["loader"])
        ckpt.set_rng_state(state["rng"][0])
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
        return lr

    def loss_row(self, lr: float) -> dict:
        g, d = (self.sums / max(1, self.sum_steps)).tolist()
        now = time.time()
        speed = (self.step - self.last_log[1]) * self.cfg.batch_size / max(now - self.last_log[0], 1e-9)
        self.last_log, self.sums, self.sum_steps = (now, self.step), torch.zeros(2), 0
        if not (math.isfinite(g) and math.isfinite(d)):
            raise TrainError(f"loss became {g if not math.isfinite(g) else d} at step {self.step}; lower --lr")
        return {"step": self.step, f"loss_{self.head.name}": g, "loss": self.head.weight * g, "loss_critic": d,
                "lr": lr, "samples_per_s": speed}

    def save(self, warn) -> None:
        if self.out is None:
            return
        state = {"step": self.step, "total_steps": self.total, "optimizer": self.opt_g.state_dict(),
                 "critic_optimizer": self.opt_d.state_dict(), "scheduler": self.sched.state_dict(),
                 "loader": self.loader.state_dict(), "rng": [ckpt.rng_state()], "world": 1}
        ckpt.save_checkpoint(self.out, self.gen, state, {"model": self.info.name, "step": str(self.step)})
        try:
            ckpt.save_weights(self.critic, self.out / CRITIC_WEIGHTS, {"model": self.critic.netspec.name})
        except OSError as e:
            raise ckpt.CheckpointError(f"cannot write the critic's weights into '{self.out}': {e.strerror or e}")
        try:
            from .plot import plot_curves

            plot_curves(self.out / "metrics.csv", self.out / "curves.png")
        except Exception as e:  # noqa: BLE001 - a plotting failure must never lose a run
            warn(f"warning: could not draw curves.png: {e}")


def train_pair(gen: torch.nn.Module, cfg: RunConfig, data: Data | str | None, out: Path | None, *,
               resume: bool = False, stop_after: int | None = None, overrides: dict | None = None,
               progress: bool = True, live: bool | None = None, stream=None, on_step=None) -> TrainResult:
    """`trainer.train` for a model with an adversarial head: the same arguments, the same
    Ctrl-C handling, result and summary line."""
    t_start = time.time()
    dist = ddp.setup(cfg.device)
    if dist.world > 1:
        raise TrainError("adversarial training runs in one process; start it without torchrun")
    if cfg.grad_accum != 1:
        raise TrainError("adversarial training takes one batch per step; set grad_accum to 1")
    if cfg.precision == "fp16":
        raise TrainError("adversarial training runs in fp32 or bf16")
    info = gen.netspec  # trainer.train has checked its heads' tasks
    head = adversarial_head(info)
    if resume:
        from .runfolder import read_meta

        critic_over = (read_meta(out).get("critic") or {}).get("overrides") or {}
    else:
        overrides, critic_over = split_overrides(info, overrides)
    critic = build_critic(info, critic_over)
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
    if resume:
        run.restore()
    if out is not None:
        if resume:
            save_config(out, cfg)
        else:
            write_run_files(out, info, cfg, real, overrides,
                            {"critic": {"model": critic.netspec.name, "overrides": critic_over}})
    params = sum(p.numel() for p in gen.parameters()), sum(p.numel() for p in critic.parameters())
    bar = Progress(run.total, run.step, progress, cfg.log_every, "samples", stream=stream, live=live)
    bar.message(f"{info.name} against {critic.netspec.name}: {params[0]:,} + {params[1]:,} parameters on "
                f"{dist.device}; {real.describe()}; {run.total} steps" + (f" (resuming at {run.step})" if resume else ""))
    csv_file = csv = None
    if out is not None:
        cols = csv_columns(info, "samples")
        cols.insert(cols.index("loss") + 1, "loss_critic")
        cols.insert(cols.index("val_loss") + 1, "val_loss_critic")
        csv_file, csv = open_metrics(out / "metrics.csv", cols, run.step if resume else None)
    result = TrainResult(out_dir=out, step=run.step, total_steps=run.total, seconds=0.0)
    stop = _StopFlag(enabled=True)
    try:
        while run.step < run.total:
            lr = run.train_step()
            step = result.step = run.step
            do_eval = step == run.total or (cfg.eval_every and step % cfg.eval_every == 0)
            do_save = step == run.total or (cfg.save_every and step % cfg.save_every == 0)
            want_stop = (stop_after is not None and step >= stop_after) or stop.set
            row = run.loss_row(lr) if step % max(1, cfg.log_every) == 0 or do_eval or want_stop else {}
            result.train_loss = row.get("loss", result.train_loss)
            if do_eval:
                result.val = evaluate_pair(gen, critic, head.name, real, cfg)
                row.update(val_columns(info, result.val))
                row["val_loss_critic"] = result.val["critic_loss"]
                if out is not None:
                    try:
                        draw("samples", gen, head.name, real, dist.device, cfg.seed, out, step)
                    except Exception as e:  # noqa: BLE001 - a drawing failure must never lose a run
                        bar.message(f"warning: could not draw samples: {e}")
            if row:
                if csv is not None:
                    csv.writerow({k: csv_value(v) for k, v in row.items()})
                bar.update(step, f"loss {row['loss']:.4f}  critic {row['loss_critic']:.4f}  lr {lr:.2e}  "
                                 f"{row['samples_per_s']:,.0f} samples/s", force=bool(do_eval))
                if do_eval:
                    bar.message(f"step {step}: {format_metrics(result.val)}  critic {result.val['critic_loss']:.4f}")
            else:
                bar.update(step)
            if on_step is not None:
                on_step(step, row)
            if do_save or (want_stop and step < run.total):
                if csv_file is not None:
                    csv_file.flush()
                run.save(bar.message)
            if want_stop and step < run.total:
                result.interrupted = True
                if stop.set:
                    bar.message(f"stopped at step {step}; continue with --resume {out}" if out else
                                f"stopped at step {step}")
                break
    finally:
        stop.restore()
        bar.close()
        if csv_file is not None:
            csv_file.close()
    result.seconds = time.time() - t_start
    if progress:
        _summary(info.name, result, stream)
    return result
