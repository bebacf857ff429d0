/** `/api/plugins`: list, search and read plugins. */

import type { FastifyPluginAsync } from 'fastify';
import type { PluginManager } from '../../plugin/manager.ts';

export const registerPluginRoutes: FastifyPluginAsync<{ manager: PluginManager }> = async (app, { manager }) => {
  app.get('/', async () => manager.list());

  app.get<{ Params: { id: string } }>(
    '/:id',
    {
      schema: { params: { type: 'object', properties: { id: { type: 'string', maxLength: 200 } }, required: ['id'] } },
    },
    async (request) => manager.get(request.params.id),
  );
};
