"""RFC 7396 JSON merge-patch, as one pure function.

No suitable maintained library exists for it: `json-merge-patch` targets RFC 7386 (obsoleted
by 7396), `jsonmerge` merges by schema-driven strategies rather than by 7396's rules, and the
algorithm is the dozen lines of the RFC's section 2. Its tests are the RFC's examples.
"""

from __future__ import annotations

from typing import Any


def merge_patch(target: Any, patch: Any) -> Any:
    """`target` with `patch` applied; neither argument is modified.

    A patch that is not an object replaces the target; an object merges key by key, null
    removing the key, objects merging recursively, anything else replacing. A target that is
    not an object is taken as `{}` under an object patch. Parts the patch leaves alone are
    shared with `target`, not copied: documents here are never modified in place.
    """
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
