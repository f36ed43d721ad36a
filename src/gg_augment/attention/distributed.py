"""Make every rank's :class:`~gg_augment.AttentionCache` identical (the DDP end-of-epoch merge)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from .cache import AttentionCache

__all__ = ["sync_cache"]


@torch.no_grad()
def sync_cache(cache: AttentionCache, process_group: Any = None, chunk_size: int = 65536) -> None:
    """Merge what each rank wrote since the last sync; a collective, every rank calls it.

    For every sample written since the last sync on at least one rank, the ranks that wrote it
    contribute their map (cellwise mean where several did, ignoring cells they never wrote);
    the other samples keep their maps, identical on all ranks when the caches started
    identical. One ``all_reduce`` of a float32 (chunk, 2·gh·gw + 1) buffer per chunk of
    ``chunk_size`` samples. Clears ``updated`` and refreshes the cache's host-side record.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError("AttentionCache.sync() needs an initialised torch.distributed process group")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an int >= 1; got {chunk_size!r}")
    grid = cache.grid_size
    cells = grid[0] * grid[1]
    for start in range(0, cache.num_samples, chunk_size):
        stop = min(start + chunk_size, cache.num_samples)
        values = cache.values[start:stop].float().view(-1, cells)
        updated = cache.updated[start:stop]
        mine = updated.unsqueeze(1) & ~torch.isnan(values)
        payload = torch.cat([torch.where(mine, values, 0.0), mine.float(), updated.float().unsqueeze(1)], dim=1)
        dist.all_reduce(payload, op=dist.ReduceOp.SUM, group=process_group)
        total, count, writers = payload[:, :cells], payload[:, cells : 2 * cells], payload[:, -1:]
        merged = torch.where(count > 0, total / count.clamp_min(1.0), float("nan"))
        merged = torch.where(writers > 0, merged, values)
        cache.values[start:stop] = merged.view(-1, *grid).to(cache.values.dtype)
        cache.seen[start:stop] |= writers.squeeze(1) > 0
    cache.updated.zero_()
    cache.refresh_host_record()
