/* cni_conf.h - finding the node's CNI network configuration. */
#ifndef CRISP_NET_CNI_CONF_H
#define CRISP_NET_CNI_CONF_H

#include "base/err.h"

/* The network config kubelet nodes use: the lexically first *.conflist, *.conf or
 * *.json file in dir. *path = NULL (and 0) when there is none or dir is missing. */
int cni_conf_find(const char *dir, char **path, err_t **e);

#endif
