"""分类处置: what each handling type publishes, and a first draft of the text to publish (pure).

The draft is a starting point for the responsible department (涉事责任单位), not a statement: an officer fills
in the bracketed parts. Placeholders: {title} (the incident's title), {department}, {date} (local date).
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from models.enums import SUGGESTED_HANDLING, Category, HandlingType
from models.tables import Incident

TEMPLATES: dict[HandlingType, str] = {
    HandlingType.ADOPTED_SUGGESTION: (
        "关于网民反映“{title}”的回复：感谢您的建议。经研究，{department}已采纳相关建议，"
        "将于【时间】前【具体措施】。落实情况将在【渠道】公开。"),
    HandlingType.REAL_DIFFICULTY: (
        "关于“{title}”的情况说明：{department}已于{date}核实有关情况。针对群众反映的困难，"
        "现制定解决方案如下：【措施、责任人、完成时限】。办理进展将及时公开。"),
    HandlingType.MAJOR_PROBLEM: (
        "关于“{title}”的情况通报：{date}，{department}获悉有关情况后高度重视，已成立调查组开展调查。"
        "经查，【调查结果】。对相关责任人【处理意见】。后续情况将及时通报。"),
    HandlingType.CONFUSION: (
        "关于“{title}”的情况通报：{date}【时间】，【地点】发生【事件】。事件发生后，{department}立即"
        "【已采取的措施】。目前【最新进展】。有关情况将持续发布，请以官方发布信息为准。"),
    HandlingType.WRONG_VIEW: (
        "关于“{title}”的说明：近日，网上有关“{title}”的说法与事实不符。经核实，【事实】。"
        "相关政策依据为【依据】。欢迎社会各界监督。"),
    HandlingType.FALSE_INFO: (
        "辟谣：近日网传“{title}”。经{department}核实，该信息系谣言，【事实】。"
        "我们已将有关线索移交公安机关依法处理。请广大网民不信谣、不传谣，以官方发布信息为准。"),
}


def handling_of(inc: Incident) -> tuple[HandlingType | None, bool]:
    """The incident's handling type and whether 研判 chose it (else suggested from the category)."""
    if inc.handling_type:
        try:
            return HandlingType(inc.handling_type), True
        except ValueError:
            return None, True
    return SUGGESTED_HANDLING.get(Category(inc.category)), False


def draft(inc: Incident, *, now: datetime, tz: tzinfo) -> str | None:
    """The draft publication for the incident's handling type (None when it has none)."""
    kind, _ = handling_of(inc)
    if kind is None:
        return None
    title = " ".join(inc.title.split())[:60]
    return TEMPLATES[kind].format(title=title, department=inc.department or "【责任单位】",
                                  date=now.astimezone(tz).strftime("%Y年%m月%d日"))
