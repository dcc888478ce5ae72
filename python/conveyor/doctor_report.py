"""How ``conveyor doctor`` shows its result: a text summary with histograms, or a plot."""

from __future__ import annotations

from collections import defaultdict

from conveyor.doctor import DoctorResult


def _bars(counts: dict, width: int = 40) -> list:
    top = max(counts.values(), default=0) or 1
    label_width = max((len(str(k)) for k in counts), default=0)
    return [
        f"    {str(label):<{label_width}} {count:>7}  {'#' * max(1 if count else 0, round(width * count / top))}"
        for label, count in counts.items()
    ]


def render(result: DoctorResult, max_listed: int = 20) -> str:
    """The human-readable report: findings by kind (errors first), then the summary."""
    lines = [f"conveyor doctor: {result.root} ({result.layout} layout, {result.task})", ""]
    by_kind: dict = defaultdict(list)
    for finding in result.findings:
        by_kind[(finding.severity != "error", finding.kind)].append(finding)
    for (_, kind), findings in sorted(by_kind.items()):
        lines.append(f"{findings[0].severity.upper()} {kind}: {len(findings)}")
        for finding in findings[:max_listed]:
            where = f"{finding.path}: " if finding.path else ""
            lines.append(f"    {where}{finding.message}")
        if len(findings) > max_listed:
            lines.append(f"    ... {len(findings) - max_listed} more")
    if by_kind:
        lines.append("")
    lines += [
        "summary:",
        f"  images: {result.images}   annotations: {result.annotations}   "
        f"objects: {result.objects}",
        f"  classes ({len(result.classes)}, from {result.classes_source}):",
    ]
    lines += _bars(result.classes)
    histograms = result.histograms()
    lines.append("  image size (longest side, pixels):")
    lines += _bars(histograms["image_max_side"])
    if result.box_sizes:
        lines.append("  box size (sqrt of area, pixels):")
        lines += _bars(histograms["box_sqrt_area"])
    verdict = (
        f"{len(result.errors)} error(s), {len(result.warnings)} warning(s)"
        if result.findings
        else "no problems found"
    )
    lines.append(f"  {verdict} in {result.seconds:.1f} s")
    return "\n".join(lines)


def plot(result: DoctorResult, path: str) -> None:
    """Saves objects per class, image sizes and box sizes as one figure (``--plot FILE``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    names = list(result.classes)
    axes[0].barh(names[::-1], [result.classes[n] for n in names][::-1], color="tab:blue")
    axes[0].set_title(f"objects per class ({result.objects})")
    if result.image_sizes:
        widths, heights = zip(*result.image_sizes)
        axes[1].scatter(widths, heights, s=6, alpha=0.4)
    axes[1].set_title(f"image sizes ({result.images} images)")
    axes[1].set_xlabel("width")
    axes[1].set_ylabel("height")
    if result.box_sizes:
        axes[2].hist(result.box_sizes, bins=50, color="tab:orange")
    axes[2].set_title("box size (sqrt of area, pixels)")
    figure.suptitle(f"conveyor doctor: {result.root}")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
