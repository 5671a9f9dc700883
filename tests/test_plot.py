"""`wcbench genotype plot`: every op label of a cell diagram is readable, clear of the other labels, of
the nodes and of the other edges, measured with matplotlib's renderer on the published genotypes
where the old midpoint labels collided."""

from __future__ import annotations

import numpy as np
import pytest

from wcbench.genotype import PUBLISHED
from wcbench.plot import cell_figure


def _box_meets_circle(box, x: float, y: float, r: float) -> bool:  # noqa: ANN001 - a matplotlib Bbox
    cx, cy = min(max(x, box.x0), box.x1), min(max(y, box.y0), box.y1)
    return (cx - x) ** 2 + (cy - y) ** 2 < r**2


@pytest.mark.parametrize("name", ["DARTS_V2", "PDARTS"])
def test_op_labels_clear_of_labels_nodes_and_other_edges(name: str) -> None:
    fig, drawings = cell_figure(PUBLISHED[name])
    renderer = fig.canvas.get_renderer()
    for cell, d in zip(("normal", "reduce"), drawings):
        assert len(d.labels) == 8 and len(d.nodes) == 7  # 2 ops x 4 nodes; 2 inputs, 4 nodes, the output
        boxes = [t.get_window_extent(renderer) for t in d.labels]
        centres = np.array([(x, y) for x, y, _ in d.nodes.values()])
        radius = max(r for _, _, r in d.nodes.values())
        for i, (box, text, edge) in enumerate(zip(boxes, d.labels, d.label_edges)):
            where = f"{name} {cell} cell, label {text.get_text()!r}"
            assert not any(box.overlaps(other) for other in boxes[i + 1 :]), where
            assert not any(_box_meets_circle(box, x, y, r) for x, y, r in d.nodes.values()), where
            for j, curve in enumerate(d.curves):
                if j == edge:
                    continue  # a label sits on its own edge, over it
                near_node = np.linalg.norm(curve[:, None] - centres[None], axis=-1).min(axis=1) < radius
                pts = curve[~near_node]
                inside = (
                    (pts[:, 0] > box.x0) & (pts[:, 0] < box.x1) & (pts[:, 1] > box.y0) & (pts[:, 1] < box.y1)
                )
                assert not inside.any(), f"{where} lies on edge {j}"
