"""Forms of the segments pages, and the rule builder's form <-> rule-tree translation.

The builder is server-driven: every input of the tree is a plain form field named after its node's path
(``n.2.1-field`` is the field of the first condition of the second node), htmx posts the whole form on each change
and the server answers with the re-rendered tree, so operators and inputs always fit the chosen field.
"""

from dataclasses import dataclass, field
from typing import Any

from django import forms

from crm.models import Workspace
from segments import compiler
from segments.compiler import KIND_OPERATORS, OPERATORS, VALUELESS

ATTRIBUTES = ("field", "operator", "value", "value2", "days", "times", "key")


def _path_key(path: str) -> tuple[int, ...]:
    return tuple(int(part) for part in path.split(".") if part)


def blank_condition() -> dict:
    return {"type": "condition", "field": "", "operator": ""}


def tree_from_post(data) -> dict:
    """Rebuild the rule tree from the builder's fields (unknown or malformed paths are dropped)."""
    paths = []
    for key in data:
        if key.startswith("n") and key.endswith("-type"):
            path = key[1:-5].lstrip(".")
            try:
                _path_key(path)
            except ValueError:
                continue
            paths.append(path)
    nodes: dict[str, dict] = {}
    for path in sorted(paths, key=_path_key):
        prefix = f"n.{path}" if path else "n"
        if data.get(f"{prefix}-type") == "group":
            node: dict[str, Any] = {"type": "group", "match": data.get(f"{prefix}-match") or "all", "children": []}
        else:
            node = {"type": "condition"}
            for attribute in ATTRIBUTES:
                value = (data.get(f"{prefix}-{attribute}") or "").strip()
                if value or attribute in ("field", "operator"):
                    node[attribute] = value
            _fit_operator(node)
        if path:
            parent = nodes.get(path.rsplit(".", 1)[0] if "." in path else "")
            if parent is None or parent.get("type") != "group":
                continue
            parent["children"].append(node)
        nodes[path] = node
    root = nodes.get("")
    return root if root and root.get("type") == "group" else compiler.empty_rules()


def _fit_operator(node: dict) -> None:
    """A field change can leave an operator that does not suit the new field: fall back to the field's first one."""
    spec = compiler.fields().get(node.get("field") or "")
    if spec is None:
        node["operator"] = ""
        return
    if node.get("operator") not in spec.operators:
        node["operator"] = spec.operators[0]


def _node_at(tree: dict, path: str) -> dict | None:
    node = tree
    for index in _path_key(path):
        children = node.get("children") or []
        if not 1 <= index <= len(children):
            return None
        node = children[index - 1]
    return node


def apply_action(tree: dict, action: str) -> dict:
    """``add_condition:<group path>``, ``add_group:<group path>`` or ``remove:<node path>``."""
    verb, _, path = action.partition(":")
    path = path.lstrip(".")
    try:
        _path_key(path)
    except ValueError:
        return tree
    if verb in ("add_condition", "add_group"):
        target = _node_at(tree, path)
        if target is not None and target.get("type") == "group":
            child = blank_condition() if verb == "add_condition" else compiler.group("any", blank_condition())
            target.setdefault("children", []).append(child)
    elif verb == "remove" and path:
        parent_path, _, index = path.rpartition(".")
        parent = _node_at(tree, parent_path)
        if parent is not None and 1 <= int(index) <= len(parent.get("children") or []):
            del parent["children"][int(index) - 1]
    return tree


@dataclass
class BuilderChoices:
    """What the selects of the builder offer in this workspace."""

    categories: list[str]
    products: list[tuple[int, str]]
    segments: list[tuple[int, str]]
    tags: list[str]


@dataclass
class ViewNode:
    path: str
    prefix: str
    is_group: bool
    depth: int
    match: str = "all"
    children: list["ViewNode"] = field(default_factory=list)
    field_key: str = ""
    operator: str = ""
    operators: list[tuple[str, str]] = field(default_factory=list)
    kind: str = ""
    activity: str = ""
    values: dict[str, str] = field(default_factory=dict)
    value_choices: list[tuple[str, str]] = field(default_factory=list)
    value_label: str = ""
    help: str = ""
    needs_value: bool = False
    problem: str = ""
    label: str = ""


def _value_choices(spec: compiler.FieldSpec, choices: BuilderChoices, segment_id: int | None) -> list[tuple[str, str]]:
    if spec.choices:
        return list(spec.choices)
    if spec.activity == "product":
        return [(str(pk), title) for pk, title in choices.products]
    if spec.kind == "segment":
        return [(str(pk), name) for pk, name in choices.segments if pk != segment_id]
    return []


def view_tree(
    tree: dict, *, choices: BuilderChoices, problems: dict[str, str], segment_id: int | None = None
) -> ViewNode:
    def build(node: dict, path: str, depth: int) -> ViewNode:
        prefix = f"n.{path}" if path else "n"
        if node.get("type") == "group":
            view = ViewNode(path=path, prefix=prefix, is_group=True, depth=depth, match=node.get("match") or "all")
            view.children = [
                build(child, f"{path}.{index}" if path else str(index), depth + 1)
                for index, child in enumerate(node.get("children") or [], start=1)
            ]
            view.problem = problems.get(path, "")
            view.label = f"Group {path}" if path else "All customers where"
            return view
        spec = compiler.fields().get(node.get("field") or "")
        view = ViewNode(path=path, prefix=prefix, is_group=False, depth=depth, label=path)
        view.values = {attribute: str(node.get(attribute) or "") for attribute in ATTRIBUTES}
        view.problem = problems.get(path, "")
        if spec is not None:
            view.field_key = spec.key
            view.operator = node.get("operator") or spec.operators[0]
            view.operators = [(op, _operator_label(spec, op)) for op in KIND_OPERATORS[spec.kind]]
            view.kind = "custom_attribute" if spec.key == "custom_attribute" else spec.kind
            view.activity = spec.activity
            view.value_choices = _value_choices(spec, choices, segment_id)
            view.value_label = spec.value_label
            view.help = spec.help
            view.needs_value = view.operator not in VALUELESS
        return view

    return build(tree, "", 0)


def _operator_label(spec: compiler.FieldSpec, operator: str) -> str:
    if spec.kind == "activity":
        return "did" if operator == "did" else "did not"
    return OPERATORS[operator]


def field_groups() -> list[tuple[str, list[tuple[str, str]]]]:
    grouped: dict[str, list[tuple[str, str]]] = {}
    for spec in compiler.fields().values():
        grouped.setdefault(spec.category, []).append((spec.key, spec.label))
    return list(grouped.items())


def builder_choices(*, workspace: Workspace, exclude_segment_id: int | None = None) -> BuilderChoices:
    from customers.models import CustomerTag, OrderLine, Product
    from segments.models import Segment

    categories = sorted(
        {c for c in Product.objects.filter(workspace=workspace).values_list("category", flat=True).distinct() if c}
        | {
            c
            for c in OrderLine.objects.filter(workspace=workspace, is_order_cancelled=False)
            .values_list("category", flat=True)
            .distinct()[:200]
            if c
        }
    )
    products = list(Product.objects.filter(workspace=workspace).order_by("title").values_list("pk", "title")[:500])
    segments = list(
        Segment.objects.filter(workspace=workspace)
        .exclude(pk=exclude_segment_id or 0)
        .order_by("name")
        .values_list("pk", "name")
    )
    tags = list(CustomerTag.objects.filter(workspace=workspace).values_list("name", flat=True).distinct()[:200])
    return BuilderChoices(categories=categories, products=products, segments=segments, tags=sorted(set(tags)))


class SegmentMetaForm(forms.Form):
    name = forms.CharField(max_length=120, widget=forms.TextInput(attrs={"placeholder": "e.g. Lapsed shoe buyers"}))
    description = forms.CharField(max_length=255, required=False)


class RenameForm(forms.Form):
    name = forms.CharField(max_length=120)


class CsvSegmentForm(forms.Form):
    name = forms.CharField(max_length=120)
    file = forms.FileField(help_text="A CSV with a column named 'email' (or emails in the first column), up to 5 MB.")


class RfmSettingsForm(forms.Form):
    window_days = forms.IntegerField(
        required=False, min_value=1, max_value=3650, label="Scoring window (days)",
        help_text="Only orders placed in the last N days count. Leave empty for all time.",
    )  # fmt: skip
