/*  aigw_held: requests a stage holds back, oldest first. */
#include "aigw_held.h"

#include <assert.h>
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>

//  One request in the line.
typedef struct {
    aigw_job_t *job;       //  the request
    aigw_envelope_t *env;  //  its envelope
} s_held_t;

struct _aigw_held_t {
    zlistx_t *line;  //  s_held_t, oldest first
};

static void
s_held_free (void **item)
{
    s_held_t *held = (s_held_t *) *item;
    if (held) {
        aigw_job_destroy (&held->job);
        aigw_envelope_destroy (&held->env);
        free (held);
    }
    *item = NULL;
}

aigw_held_t *
aigw_held_new (void)
{
    aigw_held_t *self = (aigw_held_t *) calloc (1, sizeof *self);
    assert (self);
    self->line = zlistx_new ();
    assert (self->line);
    zlistx_set_destructor (self->line, s_held_free);
    return self;
}

void
aigw_held_destroy (aigw_held_t **self_p)
{
    assert (self_p);
    aigw_held_t *self = *self_p;
    if (!self)
        return;
    zlistx_destroy (&self->line);
    free (self);
    *self_p = NULL;
}

void
aigw_held_add (aigw_held_t *self, aigw_job_t *job, aigw_envelope_t *env)
{
    s_held_t *held = (s_held_t *) malloc (sizeof *held);
    assert (held);
    held->job = job;
    held->env = env;
    zlistx_add_end (self->line, held);
}

bool
aigw_held_take (aigw_held_t *self, aigw_job_t **job_p, aigw_envelope_t **env_p)
{
    s_held_t *held = (s_held_t *) zlistx_detach (self->line, NULL);
    if (!held)
        return false;
    *job_p = held->job;
    *env_p = held->env;
    free (held);
    return true;
}

bool
aigw_held_drop (aigw_held_t *self, aigw_job_t *job)
{
    for (s_held_t *held = (s_held_t *) zlistx_first (self->line); held;
         held = (s_held_t *) zlistx_next (self->line))
        if (held->job == job) {
            zlistx_delete (self->line, zlistx_cursor (self->line));
            return true;
        }
    return false;
}

size_t
aigw_held_size (aigw_held_t *self)
{
    return zlistx_size (self->line);
}

//  ---------------------------------------------------------------------
//  Selftest

void
aigw_held_test (bool verbose)
{
    if (verbose)
        printf (" * aigw_held: ");
    aigw_held_t *self = aigw_held_new ();
    aigw_job_t *jobs[3];
    for (int i = 0; i < 3; i++) {
        jobs[i] = (aigw_job_t *) calloc (1, sizeof (aigw_job_t));
        assert (jobs[i]);
        aigw_envelope_t *env = aigw_envelope_new ();
        env->hop = i;
        aigw_held_add (self, jobs[i], env);
    }
    assert (aigw_held_size (self) == 3);
    //  A client that left: its request goes, the others keep their order.
    assert (aigw_held_drop (self, jobs[1]));
    assert (!aigw_held_drop (self, jobs[1]));
    assert (aigw_held_size (self) == 2);
    aigw_job_t *job;
    aigw_envelope_t *env;
    assert (aigw_held_take (self, &job, &env) && job == jobs[0] && env->hop == 0);
    aigw_job_destroy (&job);
    aigw_envelope_destroy (&env);
    //  What is left goes with the line (ASan says nothing leaks).
    aigw_held_destroy (&self);
    aigw_held_destroy (&self);
    self = aigw_held_new ();
    assert (!aigw_held_take (self, &job, &env) && aigw_held_size (self) == 0);
    aigw_held_destroy (&self);
    if (verbose)
        printf ("OK\n");
}
