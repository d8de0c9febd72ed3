"""Knowledge distillation: the loss of a student that learns a teacher's soft labels (Hinton et al.,
2015), the one place `distill.alpha` and `distill.temperature` act.

The teacher's logits come with each training batch (`teacher_logits`, computed once per teacher and
prepared data by `experiments.distill`); validation and test are scored on the labels alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

TEACHER_LOGITS = "teacher_logits"


@dataclass(frozen=True)
class Distillation:
    """`alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * label loss`.

    The T^2 factor keeps the soft term's gradients the same size whatever the temperature.
    """

    alpha: float
    temperature: float

    def loss(self, student: torch.Tensor, teacher: torch.Tensor, label_loss: torch.Tensor) -> torch.Tensor:
        t = self.temperature
        soft = F.kl_div(
            F.log_softmax(student / t, dim=-1),
            F.log_softmax(teacher.to(student.dtype) / t, dim=-1),
            reduction="batchmean",
            log_target=True,
        )
        return self.alpha * soft * t * t + (1 - self.alpha) * label_loss
