"""Display names, in the paper's spelling and order: tasks here, methods from each method's
Profile (attempt_dist.methods: its label, table rows and named variants, in the registry's order)."""

TASK_LABELS = {
    "wnli": "WNLI", "stsb": "STS-B", "mrpc": "MRPC", "rte": "RTE", "multirc": "MultiRC",
    "boolq": "BoolQ", "wic": "WiC", "wsc": "WSC", "cb": "CB", "copa": "COPA", "cola": "CoLA",
    "nq": "NQ", "hotpotqa": "HP", "searchqa": "SQA", "newsqa": "News", "winogrande": "WG",
    "yelp": "Yelp", "scitail": "SciTail", "paws": "PAWS", "mnli": "MNLI", "sst2": "SST-2",
    "qqp": "QQP", "qnli": "QNLI", "squad": "SQuAD", "record": "ReCoRD", "target": "target",
    # the toy family (attempt_dist/tasks/toy.py)
    "toy_reverse": "Reverse", "toy_sort": "Sort", "toy_category": "Category", "toy_last": "Last",
    "toy_min": "Min", "toy_person": "Person", "toy_parity": "Parity",
}
# Figure 5's rows follow the paper's tables; Figure 4 puts BoolQ, MultiRC, WiC first.
TASK_ORDER = ["wnli", "stsb", "mrpc", "rte", "multirc", "boolq", "wic", "wsc", "cb", "copa", "cola",
              "nq", "hotpotqa", "searchqa", "newsqa", "winogrande", "yelp", "scitail", "paws",
              "toy_last", "toy_min", "toy_person", "toy_parity"]
SCALING_TASKS = ["boolq", "multirc", "wic"]


def task_label(task: str) -> str:
    return TASK_LABELS.get(task, task)


def method_displays():
    """variant -> Display of every method and named variant, in the paper's order (imported
    here, not at the top: the methods bring torch, which the light commands never load)."""
    from ..methods import displays

    return displays()


def method_label(variant: str) -> str:
    found = method_displays().get(variant)
    return found.label if found else variant


def table_row(variant: str, multitask: bool) -> str:
    """The paper's row name of a variant: ATTEMPT-ST / ATTEMPT-MT, FT-MT, SPoT-g MT, ... (a
    variant no method names: itself, with -MT for a multi-task run)."""
    from ..methods import Display

    return method_displays().get(variant, Display(variant, variant)).table_row(multitask)


def order_tasks(tasks, first=()) -> list[str]:
    tasks = set(tasks)
    head = [t for t in first if t in tasks]
    rest = [t for t in TASK_ORDER if t in tasks and t not in head]
    return head + rest + sorted(tasks - set(head) - set(rest))


def order_methods(methods) -> list[str]:
    methods, order = set(methods), list(method_displays())
    return [m for m in order if m in methods] + sorted(methods - set(order))
