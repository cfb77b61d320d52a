import itertools
import statistics
from collections import defaultdict

import optuna
import pytest

from hwnas.evaluators.tabular import load_table
from hwnas.spaces import get_space
from hwnas.spaces.nb201 import OPS, Cell, CellError, canonical, parse_cell

TEXT = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|"


def test_arch_string_round_trips():
    cell = parse_cell(TEXT)
    assert cell.ops == ("nor_conv_3x3", "skip_connect", "nor_conv_1x1", "none", "avg_pool_3x3", "nor_conv_3x3")
    assert str(cell) == TEXT
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        c = get_space("nb201").sample(study.ask())
        assert parse_cell(str(c)) == c


@pytest.mark.parametrize("text", ["", "|none~0|+|none~0|none~1|", "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                                  "|none~0|+|none~1|none~0|+|none~0|none~1|none~2|"])
def test_bad_arch_strings_are_refused(text):
    with pytest.raises(CellError):
        parse_cell(text)


def test_canonical_prunes_dead_edges_and_orders_twin_nodes():
    # node 2 feeds nothing: its incoming convs do nothing; then nodes 1 and 2 can swap, and the
    # order with the smaller operation indices stands for both
    assert canonical(Cell(("skip_connect", "nor_conv_3x3", "nor_conv_1x1", "skip_connect", "skip_connect", "none"))) \
        == Cell(("none", "skip_connect", "none", "skip_connect", "none", "skip_connect"))
    # nodes 1 and 2 both fed by 0 only and both feeding 3: either order is one network
    a = Cell(("nor_conv_3x3", "skip_connect", "none", "none", "avg_pool_3x3", "nor_conv_1x1"))
    b = Cell(("skip_connect", "nor_conv_3x3", "none", "none", "nor_conv_1x1", "avg_pool_3x3"))
    assert canonical(a) == canonical(b)
    # nothing reaches the output: every edge is dead
    assert canonical(Cell(("nor_conv_3x3", "nor_conv_3x3", "none", "none", "none", "none"))) == Cell(("none",) * 6)


def test_equivalent_cells_score_alike_in_the_table():
    """If the edge order read from the table were wrong, cells called equivalent would differ as
    much as random cells (about 8 accuracy points); equivalent cells differ only by seed noise."""
    table = load_table("cifar10")
    classes = defaultdict(list)
    for ops in itertools.product(OPS, repeat=6):
        classes[canonical(Cell(ops))].append(table[str(Cell(ops))].accuracy)
    assert 8000 < len(classes) < 9000
    spread = statistics.fmean(statistics.pstdev(a) for a in classes.values() if len(a) > 1)
    assert spread < 0.003
    assert statistics.pstdev(r.accuracy for r in table.values()) > 0.05
