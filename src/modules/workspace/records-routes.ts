/**
 * REST routes of workspace records, generated from the record specs: for each kind,
 *   GET    /api/v1/tenants/{id}/<kind>              list (filters, ?q=, ?sort=, ?limit=, ?cursor=)
 *   POST   /api/v1/tenants/{id}/<kind>              create → 201 (not for kinds created elsewhere: noCreate)
 *   GET    /api/v1/tenants/{id}/<kind>/{recordId}   read
 *   PATCH  /api/v1/tenants/{id}/<kind>/{recordId}   update (not for immutable kinds)
 *   DELETE /api/v1/tenants/{id}/<kind>/{recordId}   delete → 204
 * (nested kinds, e.g. payments, under /invoices/{invoiceId}/payments). Plus the workspace settings.
 * Thin: validate (strict zod schemas), enter the workspace (workspace-access), run the SQL.
 */
import { z } from 'zod';
import { requireUser } from '../../http/auth.ts';
import type { RoutePlugin, ZodTypeProvider } from '../../http/server.ts';
import type { Clock } from '../../lib/clock.ts';
import { isoDate, recordOutputSchema, type FieldType, type RecordSpec } from './record-spec.ts';
import { assertParent, createRecord, deleteRecord, getRecord, listRecords, MAX_PAGE, sortableFields, updateRecord, type ListQuery } from './records-sql.ts';
import { RECORD_SPECS } from './record-specs.ts';
import { SETTINGS_ROLES, type WorkspaceAccess, type WorkspaceTarget } from './workspace-access.ts';
import { readSettings, settingsBody, settingsView, updateSettings } from './settings.ts';

const security: Record<string, string[]>[] = [{ session: [] }, { bearer: [] }];

const filterSchema: Record<FieldType, z.ZodType> = {
  uuid: z.uuid(),
  text: z.string().max(200),
  date: isoDate,
  timestamp: z.iso.datetime(),
  cents: z.coerce.number().int(),
  int: z.coerce.number().int(),
};

function bodySchemas(spec: RecordSpec) {
  const create: Record<string, z.ZodType> = {};
  const update: Record<string, z.ZodType> = {};
  for (const [name, field] of Object.entries(spec.fields)) {
    if (!field.input) continue;
    create[name] = field.required ? field.input : field.input.optional();
    update[name] = field.input.optional();
  }
  return { create: z.object(create).strict(), update: z.object(update).strict() };
}

function listQuerySchema(spec: RecordSpec) {
  const sorts = sortableFields(spec).flatMap((s) => [s, `-${s}`]) as [string, ...string[]];
  const shape: Record<string, z.ZodType> = {
    limit: z.coerce.number().int().min(1).max(MAX_PAGE).optional(),
    cursor: z.string().max(1000).optional(),
    sort: z.enum(sorts).optional(),
  };
  if (spec.search) shape.q = z.string().max(200).optional();
  for (const [name, field] of Object.entries(spec.fields)) {
    if (field.filter) shape[name] = filterSchema[field.type].optional();
    if (field.range) {
      shape[`${name}From`] = filterSchema[field.type].optional();
      shape[`${name}To`] = filterSchema[field.type].optional();
    }
  }
  return z.object(shape).strict();
}

export interface RecordRouteOptions {
  /**
   * Runs once a DELETE has committed, for what lives outside the tenant database (e.g. an
   * attachment's file). A failure is logged, not answered: the record is gone, and whatever it
   * left behind is for a sweep to collect.
   */
  afterDelete?: (target: WorkspaceTarget, recordId: string) => Promise<void>;
}

/** The generic routes of one record kind (see the file comment). */
export function recordRoutes(spec: RecordSpec, access: WorkspaceAccess, clock: Clock, options: RecordRouteOptions = {}): RoutePlugin {
  const tags = ['workspace'];
  const singular = spec.singular.replace(/_/g, ' ');
  const base = spec.parent ? `/api/v1/tenants/:id/${spec.parent.name}/:${spec.parent.param}/${spec.name}` : `/api/v1/tenants/:id/${spec.name}`;
  const parentParam = spec.parent?.param;
  const collectionShape: Record<string, z.ZodString> = { id: z.string().max(100), ...(parentParam && { [parentParam]: z.string().max(100) }) };
  const collectionParams = z.object(collectionShape);
  const itemParams = z.object({ ...collectionShape, recordId: z.string().max(100) });
  const view = recordOutputSchema(spec);
  const { create, update } = bodySchemas(spec);
  const query = listQuerySchema(spec);
  const parentOf = (params: unknown) => (parentParam ? (params as Record<string, string>)[parentParam] : undefined);
  const tenantOf = (params: unknown) => (params as { id: string }).id;
  const recordOf = (params: unknown) => (params as { recordId: string }).recordId;

  return async (app) => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    r.get(
      base,
      {
        schema: { tags, summary: `List ${spec.name} (filter, search, sort, cursor pagination)`, params: collectionParams, querystring: query, security, response: { 200: z.object({ items: z.array(view), nextCursor: z.string().nullable() }) } },
        // The rows are the view (the SELECT list is the whitelist, see presentRecord): re-checking
        // every field of every row against the response schema would cost more than the query.
        serializerCompiler: () => (data) => JSON.stringify(data),
      },
      async (request) => {
        const parentId = parentOf(request.params);
        return access.read(requireUser(request), tenantOf(request.params), async (client) => {
          if (parentId !== undefined) await assertParent(client, spec, parentId);
          return listRecords(client, spec, request.query as ListQuery, parentId);
        });
      },
    );
    if (!spec.noCreate) {
      r.post(
        base,
        { schema: { tags, summary: `Create a ${singular}`, params: collectionParams, body: create, security, response: { 201: view } } },
        async (request, reply) => {
          const created = await access.write(requireUser(request), tenantOf(request.params), (client, target) => createRecord(client, spec, request.body as Record<string, unknown>, target, clock.now(), parentOf(request.params)));
          return reply.code(201).send(created);
        },
      );
    }
    r.get(`${base}/:recordId`, { schema: { tags, summary: `Read a ${singular}`, params: itemParams, security, response: { 200: view } } }, async (request) =>
      access.read(requireUser(request), tenantOf(request.params), (client) => getRecord(client, spec, recordOf(request.params), parentOf(request.params))),
    );
    if (!spec.immutable) {
      r.patch(`${base}/:recordId`, { schema: { tags, summary: `Update a ${singular}`, params: itemParams, body: update, security, response: { 200: view } } }, async (request) =>
        access.write(requireUser(request), tenantOf(request.params), (client) => updateRecord(client, spec, recordOf(request.params), request.body as Record<string, unknown>, clock.now(), parentOf(request.params))),
      );
    }
    r.delete(`${base}/:recordId`, { schema: { tags, summary: `Delete a ${singular}`, params: itemParams, security, response: { 204: z.null() } } }, async (request, reply) => {
      const target = await access.write(requireUser(request), tenantOf(request.params), async (client, target) => {
        await deleteRecord(client, spec, recordOf(request.params), parentOf(request.params));
        return target;
      });
      if (options.afterDelete) {
        await options.afterDelete(target, recordOf(request.params)).catch((err: unknown) => request.log.warn({ err, kind: spec.name }, 'after-delete cleanup failed; left for the sweep'));
      }
      return reply.code(204).send(null);
    });
  };
}

function settingsRoutes(access: WorkspaceAccess, clock: Clock): RoutePlugin {
  const tags = ['workspace'];
  const params = z.object({ id: z.string().max(100) });
  return async (app) => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    r.get('/api/v1/tenants/:id/settings', { schema: { tags, summary: 'The workspace settings (every member)', params, security, response: { 200: settingsView } } }, async (request) =>
      access.read(requireUser(request), request.params.id, (client) => readSettings(client)),
    );
    r.patch(
      '/api/v1/tenants/:id/settings',
      { schema: { tags, summary: 'Change the workspace settings (administrators and owners, APP-3)', params, body: settingsBody, security, response: { 200: settingsView } } },
      async (request) => access.write(requireUser(request), request.params.id, (client) => updateSettings(client, request.body, clock.now()), SETTINGS_ROLES),
    );
  };
}

/** Every record route and the settings routes. */
export function workspaceRecordRoutes(access: WorkspaceAccess, clock: Clock): RoutePlugin {
  const plugins = [...RECORD_SPECS.map((spec) => recordRoutes(spec, access, clock)), settingsRoutes(access, clock)];
  return async (app) => {
    for (const plugin of plugins) await plugin(app);
  };
}
