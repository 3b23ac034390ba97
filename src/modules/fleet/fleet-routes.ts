/**
 * Operator routes of the fleet (staff `admin` only): list and register database servers. The
 * presenter never returns the admin URL (it holds a password), only host:port.
 */
import { z } from 'zod';
import { requireStaff } from '../../http/auth.ts';
import type { RoutePlugin, ZodTypeProvider } from '../../http/server.ts';
import type { ServerService } from './servers.ts';

const serverView = z.object({
  id: z.string(),
  name: z.string(),
  region: z.string(),
  address: z.string(),
  status: z.enum(['active', 'draining']),
  maxTenants: z.number().int(),
  assignedDatabases: z.number().int(),
  pooledDatabases: z.number().int(),
});

const addServerBody = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and "-", at most 63').optional(),
  region: z.string().min(1).max(20),
  url: z.string().min(1).max(2_000).describe('postgres://admin:password@host:5432/postgres (needs CREATEDB and CREATEROLE)'),
  maxTenants: z.number().int().min(1).max(100_000).optional(),
});

const security = [{ session: [] }];

export function fleetRoutes(servers: ServerService): RoutePlugin {
  return (app) => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    const tags = ['admin'];

    r.get(
      '/api/v1/admin/servers',
      { schema: { tags, summary: 'Database servers per region, with their load (admin)', security, response: { 200: z.object({ servers: z.array(serverView) }) } } },
      async (request) => {
        requireStaff(request, ['admin']);
        return { servers: await servers.list() };
      },
    );

    r.post(
      '/api/v1/admin/servers',
      {
        schema: {
          tags,
          summary: 'Register an existing PostgreSQL server in a region; Havre checks and hardens it (admin)',
          body: addServerBody,
          security,
          response: { 201: z.object({ server: serverView, warnings: z.array(z.string()) }) },
        },
      },
      async (request, reply) => {
        const staff = requireStaff(request, ['admin']);
        const { url, ...rest } = request.body;
        const added = await servers.add({ ...rest, adminUrl: url }, { type: 'staff', id: staff.userId, ip: request.ip });
        const { warnings, ...server } = added;
        return reply.status(201).send({ server, warnings });
      },
    );
  };
}
