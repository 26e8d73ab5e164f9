"""AlexNet reference model with torchvision's exact module structure.

Same modules, indices and state_dict keys as `torchvision.models.alexnet`
(the one-GPU variant of Krizhevsky et al. 2012, without local response
normalisation), so torchvision's state dicts load as they are:

    features.0   Conv2d(3, 64, 11, stride 4, padding 2)   features.1 ReLU   features.2 MaxPool2d(3, 2)
    features.3   Conv2d(64, 192, 5, padding 2)            features.4 ReLU   features.5 MaxPool2d(3, 2)
    features.6   Conv2d(192, 384, 3, padding 1)           features.7 ReLU
    features.8   Conv2d(384, 256, 3, padding 1)           features.9 ReLU
    features.10  Conv2d(256, 256, 3, padding 1)           features.11 ReLU  features.12 MaxPool2d(3, 2)
    avgpool      AdaptiveAvgPool2d((6, 6))
    classifier.0 Dropout   classifier.1 Linear(9216, 4096)  classifier.2 ReLU
    classifier.3 Dropout   classifier.4 Linear(4096, 4096)  classifier.5 ReLU
    classifier.6 Linear(4096, num_classes)

61,100,840 parameters with 1000 classes. Initialisation is PyTorch's
default for each layer, as torchvision's.
"""
from __future__ import annotations

import torch
from torch import nn


class AlexNet(nn.Module):
    def __init__(self, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        # Makes the classifier independent of the input size (any input
        # >= 63x63 gets through the features).
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def alexnet(**kwargs) -> AlexNet:
    return AlexNet(**kwargs)
