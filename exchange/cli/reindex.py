"""``exchange reindex``: rebuild the search indexes after an upgrade that changes their form
(``exchange.store.indexing.INDEX_FORM``). Until then searches answer 503; reads by id and
writes go on. Run it with the exchange stopped."""

from exchange.cli.administration import record_admin
from exchange.cli.data_dir import open_exchange
from exchange.cli.messages import console, progress
from exchange.cli.options import DataOpt, settings
from exchange.services import Services
from exchange.store.indexing import INDEX_FORM


def reindex(data: DataOpt = None) -> None:
    """Rebuild the search indexes from the records (after an upgrade that asks for it)."""
    services = open_exchange(settings(data))
    rebuild(services)


def rebuild(services: Services) -> int:
    """Open and index every current record again, recorded as an operator's act."""
    with progress() as bar:
        task = bar.add_task("Rebuilding the search indexes", total=None)
        done = services.repository.rebuild_indexes(
            lambda n, total: bar.update(task, completed=n, total=total))
    record_admin(services, "reindex", {"resources": done, "form": INDEX_FORM})
    console.print(f"Rebuilt the search indexes of {done} records (form {INDEX_FORM}).",
                  highlight=False)
    return done


def outdated_hint(services: Services) -> str | None:
    """What to say when the indexes are in an earlier form, or None."""
    if services.repository.index.current:
        return None
    return ("The search indexes are in an earlier form: searches answer 503 until "
            f"`exchange reindex --data {services.settings.data_dir}` (stop the exchange "
            "first).")
