"""The page's sections, one tab each. The tabs keep their state under KEY and only the open one
runs, so tests and the benchmark open a section by its name."""

KEY = "section"
LIVE, LOSSES, SURFACES, DATASET, YOUR_DATA, WHICH_LOSS, TRAPS, EXPORT = NAMES = (
    "Live",
    "Losses",
    "Surfaces",
    "Dataset",
    "Your data",
    "Which loss?",
    "Traps",
    "Export",
)
