"""The distillation loss is Hinton et al.'s, computed by hand here, and only the train step uses it."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_modules.distillation import Distillation


def hand_kd(
    student: list[list[float]], teacher: list[list[float]], labels: list[int], alpha: float, t: float
) -> float:
    """alpha * T^2 * mean_i KL(p_teacher || p_student) at temperature T + (1 - alpha) * mean_i CE."""

    def softmax(z: list[float], temp: float) -> list[float]:
        e = [math.exp(v / temp) for v in z]
        return [v / sum(e) for v in e]

    kl = ce = 0.0
    for s, te, y in zip(student, teacher, labels):
        ps, pt = softmax(s, t), softmax(te, t)
        kl += sum(a * math.log(a / b) for a, b in zip(pt, ps))
        ce += -math.log(softmax(s, 1.0)[y])
    n = len(labels)
    return alpha * t * t * kl / n + (1 - alpha) * ce / n


@pytest.mark.parametrize(("alpha", "t"), [(0.5, 2.0), (0.9, 4.0), (0.0, 3.0), (1.0, 1.0)])
def test_the_loss_equals_the_hand_computation(alpha: float, t: float) -> None:
    student = [[1.0, -0.5, 0.2], [0.3, 0.1, 2.0], [-1.0, 0.0, 0.5]]
    teacher = [[2.5, -1.0, 0.0], [0.0, 0.2, 3.0], [0.4, 1.5, -0.2]]
    labels = [0, 2, 1]
    s = torch.tensor(student, dtype=torch.float64)
    label_loss = torch.nn.functional.cross_entropy(s, torch.tensor(labels))
    got = Distillation(alpha, t).loss(s, torch.tensor(teacher, dtype=torch.float64), label_loss)
    assert float(got) == pytest.approx(hand_kd(student, teacher, labels, alpha, t), rel=1e-12)


def test_a_student_equal_to_its_teacher_pays_only_the_label_term() -> None:
    z = torch.tensor([[1.0, 2.0], [0.5, -0.5]])
    assert float(Distillation(1.0, 2.0).loss(z, z.clone(), torch.tensor(7.0))) == pytest.approx(0.0, abs=1e-7)
    assert float(Distillation(0.25, 2.0).loss(z, z.clone(), torch.tensor(8.0))) == pytest.approx(6.0)
