/**
 * HTTP routes of a member's own personal data: the export (ACC-4) and the deletion request
 * (ACC-5). Thin: validate, authenticate, call the member-data service, present.
 */
import { z } from 'zod';
import type { RoutePlugin, ZodTypeProvider } from '../../http/server.ts';
import { clearSessionCookie } from '../../http/auth.ts';
import { actorOf, SIGNED_IN } from './accounts-routes.ts';
import { givenPassword } from './accounts-schemas.ts';
import { exportZip, SECTION_FILES, sectionCsv } from './member-data-formats.ts';
import { EXPORT_SECTIONS, type MemberDataService } from './member-data.ts';

const exportQuery = z
  .object({
    format: z.enum(['json', 'csv']).default('json'),
    /** With `format=csv`: one section as one CSV file; without it, every section in one zip. */
    section: z.enum(EXPORT_SECTIONS).optional(),
  })
  .strict();

const deletionBody = z.object({ password: givenPassword }).strict();

export function memberDataRoutes(memberData: MemberDataService): RoutePlugin {
  return (app) => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    const tags = ['accounts'];

    r.get('/api/v1/me/data-export', { schema: { tags, summary: 'Everything Havre holds about me, as JSON, one CSV section, or a zip of CSV files (ACC-4)', querystring: exportQuery, security: SIGNED_IN } }, async (request, reply) => {
      const data = await memberData.exportData(actorOf(request));
      const day = data.generatedAt.slice(0, 10);
      reply.header('cache-control', 'no-store');
      const { format, section } = request.query;
      if (format === 'json') return reply.header('content-disposition', `attachment; filename="havre-my-data-${day}.json"`).send(data);
      if (section) {
        return reply.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="havre-my-data-${day}-${SECTION_FILES[section]}"`).send(sectionCsv(section, data[section]));
      }
      return reply.type('application/zip').header('content-disposition', `attachment; filename="havre-my-data-${day}.zip"`).send(exportZip(data));
    });

    r.post('/api/v1/me/deletion-request', { schema: { tags, summary: 'Delete my account: personal data erased, sessions and tokens revoked (ACC-5); needs my password', body: deletionBody, security: SIGNED_IN } }, async (request, reply) => {
      await memberData.deleteAccount(actorOf(request), request.body.password);
      clearSessionCookie(reply);
      return reply.status(204).send();
    });
  };
}
