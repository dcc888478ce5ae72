"""``VOCModule``: a torchvision detection or segmentation model trained as a conveyor Module
(used by ``conveyor fit``). Weights start random (no download) or come from a local file."""

from __future__ import annotations

import os
from typing import Any, List, Optional

import torch
import torch.distributed as dist
import torchvision

from conveyor.training.metrics import ConfusionMatrix, DetectionAP
from conveyor.training.module import Module

SEGMENTATION_MODELS = (
    "lraspp_mobilenet_v3_small",
    "lraspp_mobilenet_v3_large",
    "deeplabv3_mobilenet_v3_large",
    "fcn_resnet50",
    "deeplabv3_resnet50",
)
DETECTION_MODELS = (
    "fasterrcnn_mobilenet_v3_large_320_fpn",
    "fasterrcnn_mobilenet_v3_large_fpn",
    "retinanet_resnet50_fpn",
    "ssdlite320_mobilenet_v3_large",
    "fasterrcnn_resnet50_fpn",
)


def build_model(task: str, model: str, num_classes: int, image_size: int) -> torch.nn.Module:
    """A torchvision model with random weights (no pretrained download)."""
    if task == "segmentation":
        if model not in SEGMENTATION_MODELS:
            raise ValueError(
                f"model={model!r} is not a segmentation model; choose from {', '.join(SEGMENTATION_MODELS)}"
            )
        if model == "lraspp_mobilenet_v3_small":
            net = lraspp_mobilenet_v3_small(num_classes)
        else:
            net = getattr(torchvision.models.segmentation, model)(
                weights=None, weights_backbone=None, num_classes=num_classes
            )
        # torchvision's MobileNetV3 uses BatchNorm momentum 0.01 (tuned for fine-tuning pretrained
        # weights); from random weights the running statistics would lag far behind training
        for module in net.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.momentum = 0.1
        return net
    if model not in DETECTION_MODELS:
        raise ValueError(
            f"model={model!r} is not a detection model; choose from {', '.join(DETECTION_MODELS)}"
        )
    kwargs = dict(weights=None, weights_backbone=None, num_classes=num_classes)
    if not model.startswith("ssdlite"):
        kwargs.update(min_size=image_size, max_size=image_size)
    return getattr(torchvision.models.detection, model)(**kwargs)


def lraspp_mobilenet_v3_small(num_classes: int) -> torch.nn.Module:
    """torchvision's LR-ASPP head on torchvision's MobileNetV3-Small backbone (torchvision ships
    only the Large variant; this mirrors its builder), about 3x cheaper than the Large one."""
    from torchvision.models._utils import IntermediateLayerGetter
    from torchvision.models.segmentation.lraspp import LRASPP

    backbone = torchvision.models.mobilenet_v3_small(weights=None, dilated=True).features
    stages = (
        [0]
        + [i for i, block in enumerate(backbone) if getattr(block, "_is_cn", False)]
        + [len(backbone) - 1]
    )
    low, high = stages[-4], stages[-1]
    low_channels, high_channels = backbone[low].out_channels, backbone[high].out_channels
    backbone = IntermediateLayerGetter(backbone, return_layers={str(low): "low", str(high): "high"})
    return LRASPP(backbone, low_channels, high_channels, num_classes)


def _class_names(names: Optional[str], num_classes: int) -> list:
    """The names of labels ``1..num_classes - 1``."""
    if names:
        listed = [name.strip() for name in names.split(",")] if isinstance(names, str) else names
        if len(listed) != num_classes - 1:
            raise ValueError(
                f"class_names has {len(listed)} names; num_classes={num_classes} needs "
                f"{num_classes - 1} (background is label 0)"
            )
        return list(listed)
    if num_classes == 21:
        from conveyor.voc import VOC_CLASSES

        return list(VOC_CLASSES)
    return [f"class_{k}" for k in range(1, num_classes)]


class VOCModule(Module):
    """Trains a torchvision model on VOC batches and reports mIoU or mAP.

    Args:
        task: "segmentation" or "detection" (must match the data).
        model: torchvision model name (segmentation: lraspp_mobilenet_v3_small, lraspp_mobilenet_v3_large,
            deeplabv3_mobilenet_v3_large, fcn_resnet50, deeplabv3_resnet50; detection:
            fasterrcnn_mobilenet_v3_large_320_fpn, fasterrcnn_mobilenet_v3_large_fpn,
            retinanet_resnet50_fpn, ssdlite320_mobilenet_v3_large, fasterrcnn_resnet50_fpn); default
            lraspp_mobilenet_v3_small or fasterrcnn_mobilenet_v3_large_320_fpn by task.
        lr: learning rate of AdamW.
        weight_decay: weight decay of AdamW.
        weights: optional local file with a state_dict to start from (loaded with weights_only=True).
        image_size: input side length (detection models resize to it).
        num_classes: classes including background (21 for VOC).
        class_names: the class names of labels 1, 2, ..., comma-separated (default: VOC's 20
            when num_classes is 21, else "class_<k>"); per-class AP / IoU are logged by name.
    """

    def __init__(
        self,
        task: str = "segmentation",
        model: Optional[str] = None,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        weights: Optional[str] = None,
        image_size: int = 256,
        num_classes: int = 21,
        class_names: Optional[str] = None,
    ) -> None:
        super().__init__()
        if task not in ("segmentation", "detection"):
            raise ValueError(f"task={task!r}: use 'detection' or 'segmentation'")
        if model is None:
            model = (
                "lraspp_mobilenet_v3_small"
                if task == "segmentation"
                else "fasterrcnn_mobilenet_v3_large_320_fpn"
            )
        self.save_hyperparameters()
        self.hparams["model"] = model
        self._hparams_initial["model"] = model
        self.task = task
        self.net = build_model(task, model, num_classes, image_size)
        if weights:
            if not os.path.isfile(weights):
                raise FileNotFoundError(f"weights file {weights} not found")
            state = torch.load(weights, map_location="cpu", weights_only=True)
            state = state.get("state_dict", state)
            state = {k[len("net.") :] if k.startswith("net.") else k: v for k, v in state.items()}
            self.net.load_state_dict(state)
        self._metric: Any = None
        self.class_names = _class_names(class_names, num_classes)

    def forward(self, images):
        if self.task == "segmentation":
            return self.net(images)["out"]
        return self.net(list(images))

    def training_step(self, batch, batch_idx):
        images, targets = batch
        if self.task == "segmentation":
            logits = self(images)
            loss = torch.nn.functional.cross_entropy(logits, targets, ignore_index=255)
        else:
            losses = self.net(list(images), list(targets))
            loss = sum(losses.values())
        self.log(
            "train_loss", loss, prog_bar=False, on_step=True, on_epoch=True, batch_size=len(images)
        )
        return loss

    # -- evaluation -----------------------------------------------------------------------
    def _start_metric(self) -> None:
        self._metric = (
            ConfusionMatrix(self.hparams["num_classes"])
            if self.task == "segmentation"
            else DetectionAP()
        )

    def _eval_step(self, batch, prefix: str) -> None:
        images, targets = batch
        if self.task == "segmentation":
            logits = self(images)
            loss = torch.nn.functional.cross_entropy(logits.float(), targets, ignore_index=255)
            self.log(f"{prefix}_loss", loss, batch_size=len(images))
            self._metric.update(logits.argmax(1), targets)
        else:
            predictions = self.net(list(images))
            self._metric.update(predictions, list(targets))

    def _finish_metric(self, prefix: str) -> float:
        metric = self._metric
        if self.task == "segmentation":
            if dist.is_available() and dist.is_initialized():
                dist.all_reduce(metric.matrix)
            value = metric.mean_iou()
            self.log(f"{prefix}_mIoU", value, prog_bar=True, sync_dist=False)
            for label, iou in enumerate(metric.iou_per_class().tolist()):
                if label > 0 and iou == iou:  # background and absent classes (NaN) left out
                    self.log(f"{prefix}_IoU/{self.class_names[label - 1]}", iou)
            self.log(f"{prefix}_pixel_acc", metric.pixel_accuracy())
        else:
            if dist.is_available() and dist.is_initialized():
                gathered: List[Any] = [None] * dist.get_world_size()
                dist.all_gather_object(
                    gathered, (metric.detections, dict(metric.ground_truth), metric._images)
                )
                merged = DetectionAP()
                offset = 0
                for detections, ground_truth, count in gathered:
                    merged.detections += [(img + offset, *rest) for img, *rest in detections]
                    for (img, label), entries in ground_truth.items():
                        merged.ground_truth[(img + offset, label)] += entries
                    offset += count
                metric = merged
            computed = metric.compute()
            value = computed["mAP"]
            self.log(f"{prefix}_mAP", value, prog_bar=True)
            for key, ap in computed.items():
                if key.startswith("AP_"):
                    label = int(key[3:])
                    name = (
                        self.class_names[label - 1] if 0 < label <= len(self.class_names) else key
                    )
                    self.log(f"{prefix}_AP/{name}", ap)
        return value

    def on_validation_epoch_start(self) -> None:
        self._start_metric()

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        value = self._finish_metric("val")
        trainer = self.trainer
        if not trainer.sanity_checking and trainer.state_stage == "fit" and trainer.is_global_zero:
            name = "mIoU" if self.task == "segmentation" else "mAP"
            loss = trainer.callback_metrics.get("train_loss")
            loss_text = f"  train_loss={loss:.4f}" if loss is not None else ""
            print(f"epoch {trainer.current_epoch}: val_{name}={value:.4f}{loss_text}", flush=True)

    def on_test_epoch_start(self) -> None:
        self._start_metric()

    def test_step(self, batch, batch_idx):
        self._eval_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._finish_metric("test")

    def predict_step(self, batch, batch_idx, dataloader_idx=0):
        images = batch[0] if isinstance(batch, (list, tuple)) else batch
        output = self(images)
        return output.argmax(1) if self.task == "segmentation" else output

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(
            self.parameters(), lr=self.hparams["lr"], weight_decay=self.hparams["weight_decay"]
        )
        total = self._total_steps()
        if total is None or total < 2:
            return optimizer
        # one-cycle: short warm-up then cosine decay, which keeps from-scratch training stable;
        # the warm-up lasts at least 1.5 steps (OneCycleLR divides by its length)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=self.hparams["lr"], total_steps=total, pct_start=max(0.2, 1.5 / total)
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def _total_steps(self):
        trainer = self._trainer
        if trainer is None:
            return None
        batches = trainer.num_training_batches
        accumulation = trainer._accumulation_for_epoch(0)
        if trainer.max_steps != -1:
            return max(1, trainer.max_steps)
        if trainer.max_epochs == -1 or batches == float("inf"):
            return None
        return max(1, trainer.max_epochs * -(-int(batches) // accumulation))
