"""REST routes for media. (Being written.)"""

from __future__ import annotations

from wanglai.gateway.endpoint import Router

router = Router()
