/** `serve`'s catalog options: where to look for plugins and how often to look for updates. */

import type { Command } from 'commander';
import type { CatalogSettings } from '../catalog/catalog.ts';
import { catalogAddresses } from '../catalog/settings.ts';
import { createError } from '../errors.ts';
import { withCatalogOption } from './plugin-catalog.ts';

/** The default schedule of a server with catalogs configured: every 6 hours. */
export const DEFAULT_CHECK_MINUTES = 360;

export function withCatalogServeOptions(command: Command): Command {
  return withCatalogOption(command).option(
    '--catalog-check-interval <minutes>',
    `how often to look for plugin updates in the configured catalogs; 0 never (env DATABRIDGE_CATALOG_CHECK_MINUTES; default ${DEFAULT_CHECK_MINUTES}; without a configured catalog the server never looks on its own)`,
    process.env.DATABRIDGE_CATALOG_CHECK_MINUTES,
  );
}

export function catalogSettings(flags: string[] | undefined, interval: string | undefined): CatalogSettings {
  const minutes = interval === undefined ? DEFAULT_CHECK_MINUTES : Number(interval);
  if (!Number.isFinite(minutes) || minutes < 0)
    throw createError('USAGE', { message: `--catalog-check-interval must be minutes (0 or more), not "${interval}"` });
  return { catalogs: catalogAddresses(flags), checkIntervalMinutes: minutes };
}
