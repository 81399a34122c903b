"""A flow's steps as lists: the flow's own list and, under each split, a "yes" and a "no" list.

Execution order: a list runs top to bottom; a split runs its "yes" or "no" list, then whatever follows the split;
the end of a branch continues after its split, the end of the flow's own list ends the run.
"""

from collections import defaultdict
from dataclasses import dataclass, field

from campaigns.models import Flow, FlowStep
from crm.models import Workspace

ListKey = tuple[int | None, str]  # (parent split id or None, "yes" / "no" / "")


@dataclass
class FlowTree:
    steps: dict[int, FlowStep] = field(default_factory=dict)
    lists: dict[ListKey, list[FlowStep]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def of(cls, steps: list[FlowStep]) -> "FlowTree":
        tree = cls()
        for step in sorted(steps, key=lambda s: (s.position, s.pk)):
            tree.steps[step.pk] = step
            tree.lists[(step.parent_id, step.branch if step.parent_id else "")].append(step)
        return tree

    @classmethod
    def load(cls, *, workspace: Workspace, flow: Flow) -> "FlowTree":
        return cls.of(list(FlowStep.objects.filter(workspace=workspace, flow=flow).select_related("template")))

    def items(self, parent_id: int | None = None, branch: str = "") -> list[FlowStep]:
        return self.lists.get((parent_id, branch if parent_id else ""), [])

    def first(self) -> FlowStep | None:
        top = self.items()
        return top[0] if top else None

    def siblings(self, step: FlowStep) -> list[FlowStep]:
        return self.items(step.parent_id, step.branch)

    def after(self, step: FlowStep) -> FlowStep | None:
        """The step that runs once ``step`` (and, for a split, its branch) is done."""
        siblings = self.siblings(step)
        index = siblings.index(step)
        if index + 1 < len(siblings):
            return siblings[index + 1]
        if step.parent_id is None:
            return None
        return self.after(self.steps[step.parent_id])

    def enter(self, split: FlowStep, *, holds: bool) -> FlowStep | None:
        """The first step of the split's "yes" (``holds``) or "no" list; an empty list goes on after the split."""
        branch = self.items(split.pk, FlowStep.Branch.YES if holds else FlowStep.Branch.NO)
        return branch[0] if branch else self.after(split)

    def subtree_ids(self, step: FlowStep) -> set[int]:
        ids = {step.pk}
        for branch in (FlowStep.Branch.YES, FlowStep.Branch.NO):
            for child in self.items(step.pk, branch):
                ids |= self.subtree_ids(child)
        return ids

    def walk(self, parent_id: int | None = None, branch: str = "", depth: int = 0):
        """(step, depth) in display order, each split followed by its yes then no lists."""
        for step in self.items(parent_id, branch):
            yield step, depth
            if step.kind == FlowStep.Kind.CONDITION:
                for name in (FlowStep.Branch.YES, FlowStep.Branch.NO):
                    yield from self.walk(step.pk, name, depth + 1)
