"""Conditionals and cameras: what we condition a predictive model on, and how it is written out.

`load_conditional` reads a YAML conditional, `render` writes it through its camera (a Jinja2
template imitating a real kind of document) into the text the model continues.
"""

from condpred.condition.conditional import (
    Author,
    Conditional,
    conditional_from_dict,
    load_conditional,
)
from condpred.condition.rendering import check_camera, describe_camera, list_cameras, render

__all__ = [
    "Author",
    "Conditional",
    "check_camera",
    "conditional_from_dict",
    "describe_camera",
    "list_cameras",
    "load_conditional",
    "render",
]
