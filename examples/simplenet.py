"""The seed's SimpleNet, for the ``ember`` CLI examples in the README.

    ember ir examples/simplenet.py:SimpleNet --input "f32[B,784]"
    ember ir examples/simplenet.py:SimpleNet --input "f32[B,784]" --output simplenet.eir
    ember run simplenet.eir --dim B=64
"""

import ember.nn as nn


class SimpleNet(nn.Module):
    def __init__(self):
        super(SimpleNet, self).__init__()
        self.fc1 = nn.Linear(784, 128)
        self.fc2 = nn.Linear(128, 10)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.relu(self.fc1(x))
        x = self.fc2(x)
        return x


model = SimpleNet()


def train_step_demo(x, y):
    """A function works as a CLI target too: ``ember ir examples/simplenet.py:train_step_demo
    --input "f32[B,784]" --input "i64[B]"`` prints forward and backward, gradients as outputs."""
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    return loss
