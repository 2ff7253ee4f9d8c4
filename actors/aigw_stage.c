/*  aigw_stage: the shared actor runtime and its forwarding helpers. */
#include "aigw_stage.h"
#include "aigw_cache.h"
#include "aigw_log.h"

#include <sys/time.h>

//  Housekeeping period of a synchronous stage.
#define AIGW_STAGE_TICK_MS 1000

int64_t
aigw_now_ms (void)
{
    struct timeval tv;
    gettimeofday (&tv, NULL);
    return (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

bool
aigw_list_has (const char *list, const char *item)
{
    size_t len = strlen (item);
    for (const char *p = list; p && *p;) {
        const char *end = strchr (p, ',');
        size_t n = end ? (size_t) (end - p) : strlen (p);
        if (n == len && memcmp (p, item, len) == 0)
            return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

bool
aigw_stage_model_allowed (const aigw_envelope_t *env, const char *model)
{
    return !env->models || aigw_list_has (env->models, model);
}

void
aigw_stage_take (aigw_worker_t *worker, aigw_stage_take_fn *take, void *self)
{
    aigw_job_t *job;
    for (int taken = 0; taken < AIGW_STAGE_BATCH_MAX && (job = aigw_worker_recv (worker));
         taken++) {
        aigw_envelope_t *env = aigw_stage_decode (job);
        if (env)
            take (self, job, env);
        else
            aigw_job_destroy (&job);
    }
}

bool
aigw_stage_pipe_term (zsock_t *pipe)
{
    char *command = zstr_recv (pipe);
    bool term = !command || streq (command, "$TERM");
    zstr_free (&command);
    return term;
}

aigw_envelope_t *
aigw_stage_decode (aigw_job_t *job)
{
    char err[128];
    aigw_envelope_t *env = aigw_envelope_decode (
        zframe_data (job->envelope), zframe_size (job->envelope), err, sizeof err);
    if (!env)
        aigw_warn ("dropping request %s: bad envelope: %s", job->request_id, err);
    return env;
}

const char *
aigw_stage_shard_key (aigw_envelope_t *env, const char *service,
                      const aigw_config_t *config)
{
    if (streq (service, "ratelimit"))
        return env->key_id ? env->key_id : "";
    if (streq (service, "cache")) {
        if (!env->cache_key && config->cache_enabled) {
            char key[AIGW_CACHE_KEY_LEN + 1];
            if (aigw_cache_key (env, key) == 0)
                aigw_envelope_set (&env->cache_key, key);
        }
        return env->cache_key ? env->cache_key : "";
    }
    return "";
}

//  Encode ENV and send it with FLAGS; destroys the job on LAST.
static int
s_send (aigw_worker_t *worker, aigw_job_t **job_p, aigw_envelope_t *env,
        int flags, const char *next, const char *shard)
{
    size_t size;
    char *data = aigw_envelope_encode (env, &size);
    if (!data) {
        aigw_error ("cannot encode envelope for %s", env->id ? env->id : "?");
        if (flags & AIGW_REPLY_LAST)
            aigw_job_destroy (job_p);
        return -1;
    }
    return aigw_worker_reply (worker, job_p, flags, next, shard, &data, size);
}

int
aigw_stage_pass (aigw_worker_t *worker, aigw_job_t **job_p, aigw_envelope_t *env,
                 const aigw_config_t *config)
{
    if (env->status == 0) {
        //  Unanswered: on to the next stage of the route.
        env->hop++;
        const char *next = aigw_envelope_stage (env);
        if (next) {
            const char *shard = aigw_stage_shard_key (env, next, config);
            return s_send (worker, job_p, env, AIGW_REPLY_LAST | AIGW_REPLY_FORWARD,
                           next, shard);
        }
        aigw_envelope_set_error (env, 500, "server_error", "route_exhausted", NULL,
                                 "no stage answered the request");
    }
    env->last = true;
    return s_send (worker, job_p, env, AIGW_REPLY_LAST, NULL, NULL);
}

int
aigw_stage_chunk (aigw_worker_t *worker, aigw_job_t **job_p, aigw_envelope_t *env)
{
    return s_send (worker, job_p, env, env->last ? AIGW_REPLY_LAST : 0, NULL, NULL);
}

//  The actor's private state.
typedef struct {
    const aigw_stage_def_t *def; //  the stage
    const aigw_config_t *config; //  settings (shared, read-only)
    aigw_worker_t *worker;      //  our broker connection
    void *state;                //  the stage's private state
    int64_t next_tick;          //  when def->tick is due, Unix ms
} self_t;

static void
s_self_destroy (self_t **self_p)
{
    self_t *self = *self_p;
    if (!self)
        return;
    if (self->state)
        self->def->state_destroy (&self->state);
    aigw_worker_destroy (&self->worker);
    free (self);
    *self_p = NULL;
}

static self_t *
s_self_new (aigw_stage_args_t *args)
{
    self_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->def = args->def;
    self->config = args->config;
    self->state = self->def->state_new (args->config);
    self->worker = aigw_worker_new (args->endpoint, self->def->name,
                                    args->config->worker_credit,
                                    self->def->replay_safe,
                                    args->config->heartbeat_ms,
                                    args->config->liveness);
    if (!self->state || !self->worker)
        s_self_destroy (&self);
    return self;
}

//  One request: the stage looks at it, the runtime sends it on.
static void
s_self_take (void *arg, aigw_job_t *job, aigw_envelope_t *env)
{
    self_t *self = (self_t *) arg;
    self->def->handle (self->state, env);
    aigw_stage_pass (self->worker, &job, env, self->config);
    aigw_envelope_destroy (&env);
}

void
aigw_stage_actor (zsock_t *pipe, void *args)
{
    char name[16];
    snprintf (name, sizeof name, "aigw-%s", ((aigw_stage_args_t *) args)->def->name);
    pthread_setname_np (pthread_self (), name);
    self_t *self = s_self_new ((aigw_stage_args_t *) args);
    if (!self) {
        zsock_signal (pipe, 1);
        return;
    }
    zsock_signal (pipe, 0);
    while (true) {
        int timeout = aigw_worker_tick (self->worker);
        int64_t now = aigw_now_ms ();
        if (self->def->tick && now >= self->next_tick) {
            self->def->tick (self->state);
            self->next_tick = now + AIGW_STAGE_TICK_MS;
        }
        zmq_pollitem_t items[] = {
            {zsock_resolve (pipe), 0, ZMQ_POLLIN, 0},
            {zsock_resolve (aigw_worker_sock (self->worker)), 0, ZMQ_POLLIN, 0}};
        if (zmq_poll (items, 2, timeout) == -1)
            break;              //  interrupted
        if ((items[0].revents & ZMQ_POLLIN) && aigw_stage_pipe_term (pipe))
            break;
        if (items[1].revents & ZMQ_POLLIN)
            aigw_stage_take (self->worker, s_self_take, self);
    }
    s_self_destroy (&self);
}
