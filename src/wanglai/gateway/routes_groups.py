"""REST routes for groups. (Being written.)"""

from __future__ import annotations

from wanglai.gateway.endpoint import Router

router = Router()
