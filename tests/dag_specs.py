"""Small networks that join named values (not series–parallel), with PyTorch twins written
by hand from the papers' pseudo-code: a Res2Net-like and a DLA-like network."""

from __future__ import annotations

#: Res2Net (Gao et al., 2019) with scale 3: the bottleneck's 3×3 conv becomes three runs
#: of w channels; the second conv reads its run plus the first conv's output, the third
#: run passes. Not series–parallel: the add in branch 2 reads branch 1's value.
RES2NET = """\
block bottle2neck(c, w) {
    residual {
        conv1: conv 1x1 x{3*w} nobias; bn1: bn; relu
        split {
            branch { convs0: conv 3x3 p1 x$w nobias; bns0: bn; y1: relu }
            branch { x2 = {}; add(y1, x2); convs1: conv 3x3 p1 x$w nobias; bns1: bn; relu }
            branch {}
        }
        conv3: conv 1x1 x$c nobias; bn3: bn
    }
    relu
}
input 12x12x8
stem: [ conv 3x3 p1 x16 nobias; bn; relu ]
layer1: bottle2neck(16, 4)
layer2: bottle2neck(16, 4)
pool avg global
fc: fc 10
"""

#: DLA (Yu et al., 2018): a tree whose root concatenates its two blocks' outputs and the
#: downsampled input, in an order no series–parallel group writes (tree2, tree1, input);
#: the first block's shortcut is a projection of the downsampled input.
DLA = """\
block tree(c, s=2) {
    x = {}
    downsample: pool $s
    project: [ conv 1x1 x$c nobias; bn ]
    from x
    tree1: {
        conv1: conv 3x3 s$s p1 x$c nobias; bn1: bn; relu
        conv2: conv 3x3 p1 x$c nobias; bn2: bn
        add(bn2, project); relu
    }
    tree2: {
        residual { conv1: conv 3x3 p1 x$c nobias; bn1: bn; relu; conv2: conv 3x3 p1 x$c nobias; bn2: bn }
        relu
    }
    root: { concat(tree2, tree1, downsample); conv: conv 1x1 x$c nobias; bn: bn; relu }
}
input 16x16x3
base: [ conv 3x3 p1 x8 nobias; bn; relu ]
level1: tree(16)
level2: tree(32)
pool avg global
fc: fc 10
"""


def torch_twins():
    """(Res2Net-like, DLA-like) as torch modules with netspec's state_dict names."""
    import torch
    from torch import nn

    def conv(cin, c, k, s=1):
        return nn.Conv2d(cin, c, k, s, k // 2, bias=False)

    class Bottle2neck(nn.Module):
        def __init__(self, cin, c, w):
            super().__init__()
            self.w = w
            self.conv1, self.bn1 = conv(cin, 3 * w, 1), nn.BatchNorm2d(3 * w)
            self.convs0, self.bns0 = conv(w, w, 3), nn.BatchNorm2d(w)
            self.convs1, self.bns1 = conv(w, w, 3), nn.BatchNorm2d(w)
            self.conv3, self.bn3 = conv(3 * w, c, 1), nn.BatchNorm2d(c)

        def forward(self, x):
            a = torch.relu(self.bn1(self.conv1(x)))
            x1, x2, x3 = torch.split(a, self.w, 1)
            y1 = torch.relu(self.bns0(self.convs0(x1)))
            y2 = torch.relu(self.bns1(self.convs1(y1 + x2)))
            out = self.bn3(self.conv3(torch.cat([y1, y2, x3], 1)))
            return torch.relu(out + x)

    class Head(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.fc = nn.Linear(c, 10)

        def forward(self, x):
            return self.fc(torch.flatten(x.mean((2, 3)), 1))

    class Res2Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(conv(8, 16, 3), nn.BatchNorm2d(16), nn.ReLU())
            self.layer1 = Bottle2neck(16, 16, 4)
            self.layer2 = Bottle2neck(16, 16, 4)
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            x = self.layer2(self.layer1(self.stem(x)))
            return self.fc(torch.flatten(x.mean((2, 3)), 1))

    class DlaBasic(nn.Module):
        def __init__(self, cin, c, s):
            super().__init__()
            self.conv1, self.bn1 = conv(cin, c, 3, s), nn.BatchNorm2d(c)
            self.conv2, self.bn2 = conv(c, c, 3), nn.BatchNorm2d(c)

        def forward(self, x, shortcut):
            out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            return torch.relu(out + shortcut)

    class Root(nn.Module):
        def __init__(self, cin, c):
            super().__init__()
            self.conv, self.bn = conv(cin, c, 1), nn.BatchNorm2d(c)

        def forward(self, *xs):
            return torch.relu(self.bn(self.conv(torch.cat(xs, 1))))

    class Tree(nn.Module):
        def __init__(self, cin, c, s=2):
            super().__init__()
            self.downsample = nn.MaxPool2d(s, s)
            self.project = nn.Sequential(conv(cin, c, 1), nn.BatchNorm2d(c))
            self.tree1, self.tree2 = DlaBasic(cin, c, s), DlaBasic(c, c, 1)
            self.root = Root(2 * c + cin, c)

        def forward(self, x):
            bottom = self.downsample(x)
            x1 = self.tree1(x, self.project(bottom))
            x2 = self.tree2(x1, x1)
            return self.root(x2, x1, bottom)

    class Dla(nn.Module):
        def __init__(self):
            super().__init__()
            self.base = nn.Sequential(conv(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU())
            self.level1, self.level2 = Tree(8, 16), Tree(16, 32)
            self.fc = nn.Linear(32, 10)

        def forward(self, x):
            x = self.level2(self.level1(self.base(x)))
            return self.fc(torch.flatten(x.mean((2, 3)), 1))

    return Res2Net(), Dla()
