/**
 * HTTP routes of customers (ACC-2): company data and contacts, members and roles, invitations,
 * and the operator's staff accounts under /admin. Non-members get 404 for a customer's ids.
 */
import type { RoutePlugin, ZodTypeProvider } from '../../http/server.ts';
import { requireStaff, requireUser } from '../../http/auth.ts';
import { actorOf, openSession, requestMeta, SIGNED_IN, type RouteSettings } from './accounts-routes.ts';
import type { AccountsServices } from './index.ts';
import * as s from './accounts-schemas.ts';
import { localeFromAcceptLanguage } from '../../lib/locale.ts';

export function customersRoutes(services: AccountsServices, settings: RouteSettings): RoutePlugin {
  const { customers, invitations, staff } = services;
  return (app) => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    const tags = ['customers'];
    const security = SIGNED_IN;

    r.get('/api/v1/customers', { schema: { tags, summary: 'The customers I belong to, with my role', security } }, async (request) => ({
      customers: await customers.listCustomers(requireUser(request).userId),
    }));

    r.get('/api/v1/customers/:id', { schema: { tags, summary: 'A customer I belong to', params: s.customerParams, security } }, async (request) =>
      customers.getCustomer(actorOf(request), request.params.id),
    );

    r.patch('/api/v1/customers/:id', { schema: { tags, summary: 'Update company data, designated contact, data-protection contact (owner/administrator)', params: s.customerParams, body: s.customerPatchBody, security } }, async (request) =>
      customers.updateCustomer(actorOf(request), request.params.id, request.body),
    );

    r.get('/api/v1/customers/:id/members', { schema: { tags, summary: 'Members and their roles', params: s.customerParams, security } }, async (request) => ({
      members: await customers.listMembers(actorOf(request), request.params.id),
    }));

    r.patch('/api/v1/customers/:id/members/:userId', { schema: { tags, summary: "Change a member's role (owner/administrator)", params: s.memberParams, body: s.roleBody, security } }, async (request) =>
      customers.changeRole(actorOf(request), request.params.id, request.params.userId, request.body.role),
    );

    r.delete('/api/v1/customers/:id/members/:userId', { schema: { tags, summary: 'Remove a member (or leave)', params: s.memberParams, security } }, async (request, reply) => {
      await customers.removeMember(actorOf(request), request.params.id, request.params.userId);
      return reply.status(204).send();
    });

    r.post('/api/v1/customers/:id/invitations', { schema: { tags, summary: 'Invite someone by e-mail (owner/administrator)', params: s.customerParams, body: s.invitationBody, security } }, async (request, reply) => {
      return reply.status(201).send(await invitations.invite(actorOf(request), request.params.id, request.body));
    });

    r.get('/api/v1/customers/:id/invitations', { schema: { tags, summary: 'Invitations of the customer (owner/administrator)', params: s.customerParams, security } }, async (request) => ({
      invitations: await invitations.listInvitations(actorOf(request), request.params.id),
    }));

    r.delete('/api/v1/customers/:id/invitations/:invitationId', { schema: { tags, summary: 'Revoke a pending invitation', params: s.invitationParams, security } }, async (request, reply) => {
      await invitations.revokeInvitation(actorOf(request), request.params.id, request.params.invitationId);
      return reply.status(204).send();
    });

    r.post('/api/v1/invitations/accept', { schema: { tags, summary: 'Accept an invitation (creates the account when needed)', body: s.acceptInvitationBody } }, async (request, reply) => {
      const { locale, ...body } = request.body;
      const result = await invitations.accept(request.principal, { ...body, locale: locale ?? localeFromAcceptLanguage(request.headers['accept-language']) }, requestMeta(request));
      if (result.session) openSession(reply, request, result.session, settings);
      return { customer: result.customer, user: result.user, ...(result.session && { csrfToken: result.session.csrfToken }) };
    });

    r.get('/api/v1/admin/staff', { schema: { tags: ['admin'], summary: 'Operator staff accounts (admin)', security } }, async (request) => {
      requireStaff(request, ['admin']);
      return { staff: await staff.listStaff() };
    });

    r.post('/api/v1/admin/staff', { schema: { tags: ['admin'], summary: 'Create a staff account; the password is shown once (admin)', body: s.staffBody, security } }, async (request, reply) => {
      requireStaff(request, ['admin']);
      return reply.status(201).send(await staff.createOperator(request.body, actorOf(request)));
    });
  };
}
