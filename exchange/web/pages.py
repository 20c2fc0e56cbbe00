"""Static pages served to people's browsers."""

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter()

_INDEX = resources.files("exchange.web").joinpath("static/index.html").read_bytes()


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index() -> HTMLResponse:
    return HTMLResponse(_INDEX)
